using System.Globalization;
using System.Text;
using NBitcoin.Secp256k1;
using SHA256 = System.Security.Cryptography.SHA256;

namespace Coinop.Ecash.Lightning;

/// <summary>What goes into an invoice <see cref="Bolt11Writer"/> signs.</summary>
public sealed record Bolt11Fields
{
    public Bolt11Network Network { get; init; } = Bolt11Network.Mainnet;

    public ulong? AmountMsat { get; init; }

    public required DateTimeOffset Timestamp { get; init; }

    public required byte[] PaymentHash { get; init; }

    public required byte[] PaymentSecret { get; init; }

    /// <summary>Inline description (tag <c>d</c>); ignored when <see cref="DescriptionHash"/> is set.</summary>
    public string Description { get; init; } = "";

    public byte[]? DescriptionHash { get; init; }

    /// <summary>Tag <c>x</c>; omitted when null (readers then assume 3600 s).</summary>
    public TimeSpan? Expiry { get; init; }

    /// <summary>Tag <c>c</c>; omitted when null.</summary>
    public ulong? MinFinalCltvExpiryDelta { get; init; }

    /// <summary>Feature bits (tag <c>9</c>): var_onion_optin and payment_secret required, basic_mpp optional, as nodes write.</summary>
    public IReadOnlyList<int> FeatureBits { get; init; } = [8, 14, 17];
}

/// <summary>
/// Writes BOLT 11 invoices signed with a node key (RFC 6979 deterministic signatures, so the specification's
/// examples come out byte for byte). The mint's fake backend and the tests' fake Lightning nodes issue real,
/// verifiable invoices with it.
/// </summary>
public static class Bolt11Writer
{
    public static string Encode(Bolt11Fields fields, ECPrivKey nodeKey)
    {
        ArgumentNullException.ThrowIfNull(fields);
        ArgumentNullException.ThrowIfNull(nodeKey);
        var hrp = "ln" + fields.Network switch
        {
            Bolt11Network.Mainnet => "bc",
            Bolt11Network.Testnet => "tb",
            Bolt11Network.Signet => "tbs",
            _ => "bcrt",
        } + (fields.AmountMsat is { } msat ? AmountText(msat) : "");
        var words = new List<byte>(Uint((ulong)fields.Timestamp.ToUnixTimeSeconds(), 7));
        AddTag(words, 16, Bech32Words.ConvertBits(fields.PaymentSecret, 8, 5, pad: true));
        AddTag(words, 1, Bech32Words.ConvertBits(fields.PaymentHash, 8, 5, pad: true));
        if (fields.DescriptionHash is { } h)
        {
            AddTag(words, 23, Bech32Words.ConvertBits(h, 8, 5, pad: true));
        }
        else
        {
            AddTag(words, 13, Bech32Words.ConvertBits(Encoding.UTF8.GetBytes(fields.Description), 8, 5, pad: true));
        }

        if (fields.Expiry is { } x)
        {
            AddTag(words, 6, Minimal((ulong)x.TotalSeconds));
        }

        if (fields.MinFinalCltvExpiryDelta is { } c)
        {
            AddTag(words, 24, Minimal(c));
        }

        if (fields.FeatureBits.Count > 0)
        {
            AddTag(words, 5, Features(fields.FeatureBits));
        }

        var preimage = new List<byte>(Encoding.UTF8.GetBytes(hrp));
        preimage.AddRange(Bech32Words.ConvertBits(words.ToArray(), 5, 8, pad: true));
        if (!nodeKey.TrySignRecoverable(SHA256.HashData([.. preimage]), out var signature) || signature is null)
        {
            throw new InvalidOperationException("signing the invoice failed");
        }

        var sig = new byte[65];
        signature.WriteToSpanCompact(sig.AsSpan(0, 64), out var recoveryId);
        sig[64] = (byte)recoveryId;
        words.AddRange(Bech32Words.ConvertBits(sig, 8, 5, pad: true));
        return Bech32Words.Encode(hrp, words);
    }

    /// <summary>The shortest amount text: the largest multiplier that keeps the amount whole.</summary>
    private static string AmountText(ulong msat)
    {
        if (msat % 100_000_000_000 == 0)
        {
            return (msat / 100_000_000_000).ToString(CultureInfo.InvariantCulture);
        }

        if (msat % 100_000_000 == 0)
        {
            return (msat / 100_000_000).ToString(CultureInfo.InvariantCulture) + "m";
        }

        if (msat % 100_000 == 0)
        {
            return (msat / 100_000).ToString(CultureInfo.InvariantCulture) + "u";
        }

        return msat % 100 == 0
            ? (msat / 100).ToString(CultureInfo.InvariantCulture) + "n"
            : ((UInt128)msat * 10).ToString(CultureInfo.InvariantCulture) + "p";
    }

    private static void AddTag(List<byte> words, byte type, IReadOnlyCollection<byte> data)
    {
        words.Add(type);
        words.Add((byte)(data.Count / 32));
        words.Add((byte)(data.Count % 32));
        words.AddRange(data);
    }

    private static byte[] Uint(ulong value, int count)
    {
        var words = new byte[count];
        for (var i = 0; i < count; i++)
        {
            words[count - 1 - i] = (byte)((value >> (5 * i)) & 31);
        }

        return words;
    }

    private static byte[] Minimal(ulong value)
    {
        var words = Uint(value, 13);
        var first = Array.FindIndex(words, w => w != 0);
        return first < 0 ? [0] : words[first..];
    }

    private static byte[] Features(IReadOnlyList<int> bits)
    {
        var words = new byte[bits.Max() / 5 + 1];
        foreach (var bit in bits)
        {
            words[words.Length - 1 - bit / 5] |= (byte)(1 << (bit % 5));
        }

        return words;
    }
}
