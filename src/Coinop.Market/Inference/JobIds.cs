using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Coinop.Market.Inference;

/// <summary>
/// Job ids: version 7 UUIDs (time-ordered, so job records go into their index in order) whose 74 random bits are
/// cryptographically random, as <see cref="Guid.CreateVersion7(DateTimeOffset)"/>'s are. The random bytes come from a
/// per-thread block drawn once per 256 ids: on Linux every <see cref="Guid.NewGuid"/> is a read of /dev/urandom,
/// a syscall per request on the hot path.
/// </summary>
public static class JobIds
{
    private const int BlockBytes = 4096;

    [ThreadStatic]
    private static byte[]? t_block;

    [ThreadStatic]
    private static int t_used;

    public static Guid NewVersion7(DateTimeOffset now)
    {
        var block = t_block;
        if (block is null || t_used > BlockBytes - 16)
        {
            block = t_block ??= new byte[BlockBytes];
            RandomNumberGenerator.Fill(block);
            t_used = 0;
        }

        Span<byte> bytes = stackalloc byte[16];
        block.AsSpan(t_used, 16).CopyTo(bytes);
        block.AsSpan(t_used, 16).Clear(); // handed out once: nothing left behind to read back
        t_used += 16;

        // RFC 9562 §5.7: 48-bit big-endian Unix milliseconds, version 7, the variant bits 10, the rest random.
        var ms = now.ToUnixTimeMilliseconds();
        BinaryPrimitives.WriteUInt16BigEndian(bytes, (ushort)(ms >> 32));
        BinaryPrimitives.WriteUInt32BigEndian(bytes[2..], (uint)ms);
        bytes[6] = (byte)((bytes[6] & 0x0F) | 0x70);
        bytes[8] = (byte)((bytes[8] & 0x3F) | 0x80);
        return new Guid(bytes, bigEndian: true);
    }
}
