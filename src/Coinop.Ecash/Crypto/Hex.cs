using System.Diagnostics.CodeAnalysis;

namespace Coinop.Ecash.Crypto;

/// <summary>Hex decoding that reports failure instead of throwing (wire input is untrusted).</summary>
public static class Hex
{
    public static bool TryDecode(string? hex, [NotNullWhen(true)] out byte[]? bytes)
    {
        bytes = null;
        if (hex is null || hex.Length % 2 != 0)
        {
            return false;
        }

        var buffer = new byte[hex.Length / 2];
        if (Convert.FromHexString(hex, buffer, out _, out var written) != System.Buffers.OperationStatus.Done || written != buffer.Length)
        {
            return false;
        }

        bytes = buffer;
        return true;
    }

    public static bool IsHex(string? s, int length) => s is not null && s.Length == length && TryDecode(s, out _);
}
