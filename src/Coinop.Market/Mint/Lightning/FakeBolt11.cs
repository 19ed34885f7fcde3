using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Coinop.Market.Mint.Lightning;

/// <summary>
/// Bolt11-looking invoices for the fake backend: <c>lnbc&lt;amount&gt;&lt;multiplier&gt;1…</c> with a bech32 data
/// part (timestamp, payment hash and expiry tags, a random stand-in signature) and a valid bech32 checksum. Only the
/// amount (human-readable part) and the payment hash are read back; nothing is signed by a real node key.
/// </summary>
public static class FakeBolt11
{
    private const string Charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

    public static string Encode(ulong amountMsat, byte[] paymentHash, DateTimeOffset timestamp, TimeSpan expiry)
    {
        var hrp = "lnbc" + AmountText(amountMsat);
        var data = new List<byte>();
        data.AddRange(ToWords((ulong)timestamp.ToUnixTimeSeconds(), 7));
        AddTag(data, 'p', ConvertBits(paymentHash, 8, 5));
        AddTag(data, 'x', TrimmedWords((ulong)expiry.TotalSeconds));
        data.AddRange(ConvertBits(RandomNumberGenerator.GetBytes(65), 8, 5)); // stands in for the node's signature
        var checksum = Checksum(hrp, data);
        var text = new StringBuilder(hrp).Append('1');
        foreach (var w in data.Concat(checksum))
        {
            text.Append(Charset[w]);
        }

        return text.ToString();
    }

    /// <summary>The amount in msat from the human-readable part; null for amountless or malformed invoices.</summary>
    public static ulong? DecodeAmountMsat(string invoice)
    {
        var s = invoice.Trim().ToLowerInvariant();
        if (s.StartsWith("lightning:", StringComparison.Ordinal))
        {
            s = s["lightning:".Length..];
        }

        var separator = s.LastIndexOf('1');
        if (!s.StartsWith("lnbc", StringComparison.Ordinal) || separator < 4)
        {
            return null;
        }

        var amount = s[4..separator];
        if (amount.Length == 0)
        {
            return null;
        }

        var multiplier = char.IsAsciiLetter(amount[^1]) ? amount[^1] : ' ';
        var digits = multiplier == ' ' ? amount : amount[..^1];
        if (!ulong.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var value))
        {
            return null;
        }

        // msat per unit of each multiplier (1 BTC = 10^11 msat); pico amounts must be whole msat (multiples of 10p).
        UInt128 msat = multiplier switch
        {
            ' ' => (UInt128)value * 100_000_000_000,
            'm' => (UInt128)value * 100_000_000,
            'u' => (UInt128)value * 100_000,
            'n' => (UInt128)value * 100,
            'p' when value % 10 == 0 => value / 10,
            _ => UInt128.MaxValue,
        };
        return msat > ulong.MaxValue || msat == 0 ? null : (ulong)msat;
    }

    /// <summary>The payment hash (tag <c>p</c>) of an invoice this class encoded; null when absent or malformed.</summary>
    public static string? DecodePaymentHash(string invoice)
    {
        var s = invoice.Trim().ToLowerInvariant();
        var separator = s.LastIndexOf('1');
        if (separator < 0 || s.Length < separator + 1 + 7 + 6)
        {
            return null;
        }

        var words = new List<byte>();
        foreach (var ch in s[(separator + 1)..^6])
        {
            var i = Charset.IndexOf(ch, StringComparison.Ordinal);
            if (i < 0)
            {
                return null;
            }

            words.Add((byte)i);
        }

        for (var i = 7; i + 3 <= words.Count;)
        {
            var tag = Charset[words[i]];
            var length = words[i + 1] * 32 + words[i + 2];
            if (i + 3 + length > words.Count)
            {
                return null;
            }

            if (tag == 'p' && length == 52)
            {
                return Convert.ToHexStringLower(ConvertBits(words.GetRange(i + 3, 52), 5, 8, pad: false).Take(32).ToArray());
            }

            i += 3 + length;
        }

        return null;
    }

    private static string AmountText(ulong msat)
    {
        if (msat % 100_000_000 == 0)
        {
            return (msat / 100_000_000).ToString(CultureInfo.InvariantCulture) + "m";
        }

        if (msat % 100_000 == 0)
        {
            return (msat / 100_000).ToString(CultureInfo.InvariantCulture) + "u";
        }

        if (msat % 100 == 0)
        {
            return (msat / 100).ToString(CultureInfo.InvariantCulture) + "n";
        }

        return ((UInt128)msat * 10).ToString(CultureInfo.InvariantCulture) + "p";
    }

    private static void AddTag(List<byte> data, char tag, List<byte> words)
    {
        data.Add((byte)Charset.IndexOf(tag, StringComparison.Ordinal));
        data.Add((byte)(words.Count / 32));
        data.Add((byte)(words.Count % 32));
        data.AddRange(words);
    }

    private static List<byte> ToWords(ulong value, int count)
    {
        var words = new List<byte>(count);
        for (var i = count - 1; i >= 0; i--)
        {
            words.Add((byte)((value >> (5 * i)) & 31));
        }

        return words;
    }

    private static List<byte> TrimmedWords(ulong value)
    {
        var words = ToWords(value, 13);
        while (words.Count > 1 && words[0] == 0)
        {
            words.RemoveAt(0);
        }

        return words;
    }

    private static List<byte> ConvertBits(IEnumerable<byte> data, int from, int to, bool pad = true)
    {
        var acc = 0;
        var bits = 0;
        var result = new List<byte>();
        var max = (1 << to) - 1;
        foreach (var value in data)
        {
            acc = (acc << from) | value;
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

        return result;
    }

    private static IEnumerable<byte> Checksum(string hrp, List<byte> data)
    {
        var values = hrp.Select(c => (byte)(c >> 5)).Append((byte)0).Concat(hrp.Select(c => (byte)(c & 31))).Concat(data).Concat(new byte[6]);
        var polymod = Polymod(values) ^ 1;
        for (var i = 0; i < 6; i++)
        {
            yield return (byte)((polymod >> (5 * (5 - i))) & 31);
        }
    }

    private static uint Polymod(IEnumerable<byte> values)
    {
        uint[] generator = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
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
