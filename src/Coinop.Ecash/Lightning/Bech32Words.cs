namespace Coinop.Ecash.Lightning;

/// <summary>
/// Bech32 (BIP-173) as BOLT 11 uses it: no 90-character limit, one case throughout, a 6-word checksum over the
/// human-readable part and the 5-bit data words.
/// </summary>
public static class Bech32Words
{
    private const string Charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

    /// <summary>Splits <paramref name="text"/> into its human-readable part (lower case) and data words, checksum checked and removed.</summary>
    public static bool TryDecode(string text, out string hrp, out byte[] words, out string? error)
    {
        hrp = "";
        words = [];
        if (text.Any(char.IsUpper) && text.Any(char.IsLower))
        {
            error = "mixed upper and lower case";
            return false;
        }

        var s = text.ToLowerInvariant();
        var separator = s.LastIndexOf('1');
        if (separator < 1 || s.Length - separator - 1 < 6)
        {
            error = "not bech32: no separator '1' followed by a checksum";
            return false;
        }

        if (s[..separator].Any(c => c < 33 || c > 126))
        {
            error = "the human-readable part has a character outside US-ASCII 33-126";
            return false;
        }

        var data = new byte[s.Length - separator - 1];
        for (var i = 0; i < data.Length; i++)
        {
            var v = Charset.IndexOf(s[separator + 1 + i], StringComparison.Ordinal);
            if (v < 0)
            {
                error = $"'{s[separator + 1 + i]}' is not a bech32 character";
                return false;
            }

            data[i] = (byte)v;
        }

        hrp = s[..separator];
        if (Polymod(Expand(hrp).Concat(data)) != 1)
        {
            error = "the bech32 checksum is wrong";
            return false;
        }

        words = data[..^6];
        error = null;
        return true;
    }

    /// <summary>The bech32 string of a human-readable part and data words, with its checksum.</summary>
    public static string Encode(string hrp, IReadOnlyList<byte> words)
    {
        var polymod = Polymod(Expand(hrp).Concat(words).Concat(new byte[6])) ^ 1;
        var text = new System.Text.StringBuilder(hrp.Length + 1 + words.Count + 6).Append(hrp).Append('1');
        foreach (var w in words)
        {
            text.Append(Charset[w]);
        }

        for (var i = 0; i < 6; i++)
        {
            text.Append(Charset[(int)((polymod >> (5 * (5 - i))) & 31)]);
        }

        return text.ToString();
    }

    /// <summary>Regroups bits, e.g. 5-bit words into bytes; <paramref name="pad"/> appends zero bits to fill the last group.</summary>
    public static byte[] ConvertBits(ReadOnlySpan<byte> data, int from, int to, bool pad)
    {
        var acc = 0;
        var bits = 0;
        var result = new List<byte>(data.Length * from / to + 1);
        var max = (1 << to) - 1;
        foreach (var value in data)
        {
            acc = ((acc << from) | value) & 0xFFFFFF;
            bits += from;
            while (bits >= to)
            {
                bits -= to;
                result.Add((byte)((acc >> bits) & max));
            }
        }

        if (pad && bits > 0)
        {
            result.Add((byte)((acc << (to - bits)) & max));
        }

        return [.. result];
    }

    private static IEnumerable<byte> Expand(string hrp) =>
        hrp.Select(c => (byte)(c >> 5)).Append((byte)0).Concat(hrp.Select(c => (byte)(c & 31)));

    private static uint Polymod(IEnumerable<byte> values)
    {
        ReadOnlySpan<uint> generator = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
        uint chk = 1;
        foreach (var v in values)
        {
            var top = chk >> 25;
            chk = ((chk & 0x1ffffff) << 5) ^ v;
            for (var i = 0; i < 5; i++)
            {
                if (((top >> i) & 1) != 0)
                {
                    chk ^= generator[i];
                }
            }
        }

        return chk;
    }
}
