using System.Buffers.Binary;

namespace Coinop.Core.Protocol;

/// <summary>
/// A binary frame carrying raw bytes: <c>[kind:1][id:16][fence:8 big-endian][payload]</c>. Job output
/// (<see cref="KindJobChunk"/>: the job id and its fence), workload output (<see cref="KindWorkloadLog"/>: the workload
/// id and the copy's epoch; the payload starts with a stream byte, 1 stdout or 2 stderr) and checkpoint uploads
/// (<see cref="KindCheckpointChunk"/>: the workload id and the epoch of the copy that made it, the archive's bytes in
/// order, ended by a <c>workload_checkpoint</c> message). Bytes never pass through JSON or base64.
/// </summary>
public static class ChunkFrame
{
    public const byte KindJobChunk = 0x01;
    public const byte KindWorkloadLog = 0x02;
    public const byte KindCheckpointChunk = 0x03;
    public const int HeaderSize = 1 + 16 + 8;

    public static void WriteHeader(Span<byte> destination, Guid jobId, long fence) => WriteHeader(destination, KindJobChunk, jobId, fence);

    public static void WriteHeader(Span<byte> destination, byte kind, Guid id, long fence)
    {
        destination[0] = kind;
        if (!id.TryWriteBytes(destination.Slice(1, 16), bigEndian: true, out _))
        {
            throw new ArgumentException("Destination too small.", nameof(destination));
        }

        BinaryPrimitives.WriteInt64BigEndian(destination.Slice(17, 8), fence);
    }

    /// <summary>Reads a job chunk's header; false for anything else.</summary>
    public static bool TryReadHeader(ReadOnlySpan<byte> frame, out Guid jobId, out long fence) =>
        TryReadHeader(frame, out var kind, out jobId, out fence) && kind == KindJobChunk;

    /// <summary>Reads the header of a frame of any known kind.</summary>
    public static bool TryReadHeader(ReadOnlySpan<byte> frame, out byte kind, out Guid id, out long fence)
    {
        kind = 0;
        id = default;
        fence = 0;
        if (frame.Length < HeaderSize || frame[0] is not (KindJobChunk or KindWorkloadLog or KindCheckpointChunk))
        {
            return false;
        }

        kind = frame[0];
        id = new Guid(frame.Slice(1, 16), bigEndian: true);
        fence = BinaryPrimitives.ReadInt64BigEndian(frame.Slice(17, 8));
        return true;
    }
}
