using System.Buffers.Binary;

namespace Coinop.Core.Protocol;

/// <summary>
/// A binary frame carrying raw job output: <c>[kind:1][job id:16][fence:8 big-endian][payload]</c>.
/// Output bytes are relayed as the backend produced them, so they never pass through JSON or base64.
/// </summary>
public static class ChunkFrame
{
    public const byte KindJobChunk = 0x01;
    public const int HeaderSize = 1 + 16 + 8;

    public static void WriteHeader(Span<byte> destination, Guid jobId, long fence)
    {
        destination[0] = KindJobChunk;
        if (!jobId.TryWriteBytes(destination.Slice(1, 16), bigEndian: true, out _))
        {
            throw new ArgumentException("Destination too small.", nameof(destination));
        }

        BinaryPrimitives.WriteInt64BigEndian(destination.Slice(17, 8), fence);
    }

    public static bool TryReadHeader(ReadOnlySpan<byte> frame, out Guid jobId, out long fence)
    {
        jobId = default;
        fence = 0;
        if (frame.Length < HeaderSize || frame[0] != KindJobChunk)
        {
            return false;
        }

        jobId = new Guid(frame.Slice(1, 16), bigEndian: true);
        fence = BinaryPrimitives.ReadInt64BigEndian(frame.Slice(17, 8));
        return true;
    }
}
