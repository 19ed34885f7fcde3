namespace Coinop.Ecash.Tokens;

/// <summary>Base64 as Cashu uses it: written url-safe without padding; read in either alphabet, padded or not.</summary>
public static class Base64Url
{
    public static string Encode(ReadOnlySpan<byte> bytes, bool pad = false)
    {
        var s = Convert.ToBase64String(bytes).Replace('+', '-').Replace('/', '_');
        return pad ? s : s.TrimEnd('=');
    }

    public static bool TryDecode(string text, out byte[] bytes)
    {
        bytes = [];
        var s = text.Trim().TrimEnd('=').Replace('-', '+').Replace('_', '/');
        if (s.Length % 4 == 1)
        {
            return false;
        }

        s = s.PadRight(s.Length + (4 - s.Length % 4) % 4, '=');
        var buffer = new byte[s.Length / 4 * 3];
        if (!Convert.TryFromBase64String(s, buffer, out var written))
        {
            return false;
        }

        bytes = buffer[..written];
        return true;
    }
}
