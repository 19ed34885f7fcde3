using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;

namespace Coinop.Market.Cluster;

/// <summary>
/// The body of a forwarded job's response, from the node holding the provider to the node serving the consumer: frames of
/// <c>kind (1 byte) | length (4 bytes, big-endian) | payload</c>. A chunk carries the provider's output bytes untouched;
/// the last frame is <c>done</c> or <c>error</c> (the provider's own JSON message) or <c>lost</c> (a reason).
/// </summary>
public static class ForwardFrames
{
    public const string ContentType = "application/x-coinop-frames";
    public const byte Chunk = 1;
    public const byte Done = 2;
    public const byte Error = 3;
    public const byte Lost = 4;
    public const int HeaderSize = 5;

    /// <summary>The largest payload a frame may carry (provider chunks are at most 64 KiB; control messages are small).</summary>
    public const int MaxPayload = 1024 * 1024;

    public static void Write(PipeWriter writer, byte kind, ReadOnlySpan<byte> payload)
    {
        var span = writer.GetSpan(HeaderSize + payload.Length);
        span[0] = kind;
        BinaryPrimitives.WriteInt32BigEndian(span[1..], payload.Length);
        payload.CopyTo(span[HeaderSize..]);
        writer.Advance(HeaderSize + payload.Length);
    }

    /// <summary>Reads one frame into a pooled buffer (the caller returns it); null at a clean end of the stream.</summary>
    public static async ValueTask<(byte Kind, byte[] Buffer, int Length)?> ReadAsync(Stream stream, byte[] header, CancellationToken cancellationToken)
    {
        var read = 0;
        while (read < HeaderSize)
        {
            var n = await stream.ReadAsync(header.AsMemory(read, HeaderSize - read), cancellationToken);
            if (n == 0)
            {
                return read == 0 ? null : throw new EndOfStreamException("the forwarded job's stream ended inside a frame header");
            }

            read += n;
        }

        var length = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(1));
        if (length is < 0 or > MaxPayload || header[0] is < Chunk or > Lost)
        {
            throw new InvalidDataException($"bad forwarded frame (kind {header[0]}, length {length})");
        }

        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(1, length));
        try
        {
            await stream.ReadExactlyAsync(buffer.AsMemory(0, length), cancellationToken);
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }

        return (header[0], buffer, length);
    }
}
