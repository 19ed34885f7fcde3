using System.Text;
using SHA256 = System.Security.Cryptography.SHA256;

namespace Coinop.Ecash.Lightning;

/// <summary>
/// A BOLT 11 Lightning invoice, parsed and checked: bech32 checksum, a known network prefix, amount, timestamp,
/// payment hash, payment secret, a description or its hash (exactly one), expiry, features, and the signature
/// (verified against the <c>n</c> field when there is one, else the payee's key is recovered from it).
/// </summary>
public sealed record Bolt11Invoice
{
    /// <summary>Feature bits (BOLT 9, context I/9) this parser knows; an unknown even bit makes the invoice unpayable.</summary>
    private static readonly int[] KnownFeatureBits = [8, 9, 14, 15, 16, 17, 24, 25, 36, 37, 48, 49];

    /// <summary>The invoice exactly as given (without a <c>lightning:</c> prefix).</summary>
    public required string Text { get; init; }

    /// <summary>The network: <see cref="Bolt11Network"/>.</summary>
    public required Bolt11Network Network { get; init; }

    /// <summary>The amount asked for, in millisatoshi; null for an invoice without an amount.</summary>
    public ulong? AmountMsat { get; init; }

    public required DateTimeOffset Timestamp { get; init; }

    /// <summary>How long after <see cref="Timestamp"/> the invoice can be paid (default 3600 s).</summary>
    public required TimeSpan Expiry { get; init; }

    public DateTimeOffset ExpiresAt => Timestamp + Expiry;

    public required byte[] PaymentHash { get; init; }

    public string PaymentHashHex => Convert.ToHexStringLower(PaymentHash);

    public required byte[] PaymentSecret { get; init; }

    /// <summary>The short description (tag <c>d</c>), or null when the invoice commits to a hash instead.</summary>
    public string? Description { get; init; }

    /// <summary>SHA-256 of the description (tag <c>h</c>), or null when the description is inline.</summary>
    public byte[]? DescriptionHash { get; init; }

    /// <summary>The payee node's compressed public key: from the <c>n</c> field, or recovered from the signature.</summary>
    public required byte[] PayeeNodeId { get; init; }

    public required ulong MinFinalCltvExpiryDelta { get; init; }

    /// <summary>Amount in whole sat, rounded up (a mint must collect at least what it pays).</summary>
    public ulong? AmountSatRoundedUp => AmountMsat is { } m ? m / 1000 + (m % 1000 == 0 ? 0UL : 1UL) : null;

    /// <summary>Parses and checks an invoice; a <see cref="FormatException"/> says what is wrong.</summary>
    public static Bolt11Invoice Parse(string text) =>
        TryParse(text, out var invoice, out var error) ? invoice! : throw new FormatException(error);

    public static bool TryParse(string? text, out Bolt11Invoice? invoice, out string? error)
    {
        invoice = null;
        try
        {
            return TryParseCore(text, out invoice, out error);
        }
        catch (Exception ex) when (ex is ArgumentException or FormatException or OverflowException or InvalidOperationException)
        {
            // The crypto library throws on some malformed inputs instead of answering false.
            error = "malformed invoice: " + ex.Message;
            return false;
        }
    }

    private static bool TryParseCore(string? text, out Bolt11Invoice? invoice, out string? error)
    {
        invoice = null;
        var s = (text ?? "").Trim();
        if (s.StartsWith("lightning:", StringComparison.OrdinalIgnoreCase))
        {
            s = s["lightning:".Length..];
        }

        if (s.Length > 7089)
        {
            error = "too long for an invoice";
            return false;
        }

        if (!Bech32Words.TryDecode(s, out var hrp, out var words, out error))
        {
            return false;
        }

        if (!Bolt11Prefix.TryParse(hrp, out var network, out var amountMsat, out error))
        {
            return false;
        }

        const int signatureWords = 104; // 65 bytes: R || S || recovery id
        if (words.Length < 7 + signatureWords)
        {
            error = "too short for an invoice";
            return false;
        }

        var timestamp = (long)ReadUInt(words.AsSpan(0, 7));
        var tagged = words.AsSpan(7, words.Length - 7 - signatureWords);
        byte[]? paymentHash = null, secret = null, descriptionHash = null, nodeId = null;
        string? description = null;
        ulong expiry = 3600, cltv = 18;
        bool hasDescription = false, hasHash = false, hasExpiry = false, hasCltv = false, hasFeatures = false;
        var i = 0;
        while (i < tagged.Length)
        {
            if (i + 3 > tagged.Length)
            {
                error = "a tagged field is cut short";
                return false;
            }

            var type = tagged[i];
            var length = tagged[i + 1] * 32 + tagged[i + 2];
            if (i + 3 + length > tagged.Length)
            {
                error = "a tagged field is longer than the invoice";
                return false;
            }

            var field = tagged.Slice(i + 3, length);
            i += 3 + length;
            switch (type)
            {
                case 1 when length == 52 && paymentHash is null: // p
                    paymentHash = Bytes(field)[..32];
                    break;
                case 16 when length == 52 && secret is null: // s
                    secret = Bytes(field)[..32];
                    break;
                case 13 when !hasDescription: // d
                    hasDescription = true;
                    try
                    {
                        description = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(Bytes(field));
                    }
                    catch (DecoderFallbackException)
                    {
                        error = "the description is not valid UTF-8";
                        return false;
                    }

                    break;
                case 23 when length == 52 && !hasHash: // h
                    hasHash = true;
                    descriptionHash = Bytes(field)[..32];
                    break;
                case 19 when length == 53 && nodeId is null: // n
                    nodeId = Bytes(field)[..33];
                    break;
                case 6 when !hasExpiry: // x
                    hasExpiry = true;
                    if (length > 12)
                    {
                        error = "the expiry is out of range";
                        return false;
                    }

                    expiry = ReadUInt(field);
                    break;
                case 24 when !hasCltv: // c
                    hasCltv = true;
                    if (length > 12)
                    {
                        error = "min_final_cltv_expiry_delta is out of range";
                        return false;
                    }

                    cltv = ReadUInt(field);
                    break;
                case 5 when !hasFeatures: // 9
                    hasFeatures = true;
                    if (UnknownEvenFeature(field) is { } bit)
                    {
                        error = $"the invoice requires feature bit {bit}, which this mint does not know";
                        return false;
                    }

                    break;
            }
        }

        if (paymentHash is null)
        {
            error = "no payment hash (tag p)";
            return false;
        }

        if (secret is null)
        {
            error = "no payment secret (tag s)";
            return false;
        }

        if (hasDescription == hasHash)
        {
            error = "an invoice needs exactly one of a description (d) or a description hash (h)";
            return false;
        }

        var signature = Bytes(words.AsSpan(words.Length - signatureWords));
        var recoveryId = signature[64];
        if (recoveryId > 3)
        {
            error = "the signature's recovery id is not 0-3";
            return false;
        }

        var preimage = new List<byte>(Encoding.UTF8.GetBytes(hrp));
        preimage.AddRange(Bech32Words.ConvertBits(words.AsSpan(0, words.Length - signatureWords), 5, 8, pad: true));
        var digest = SHA256.HashData([.. preimage]);
        if (!Bolt11Signature.TryCheck(digest, signature, recoveryId, nodeId, out var payee, out error))
        {
            return false;
        }

        invoice = new Bolt11Invoice
        {
            Text = s,
            Network = network,
            AmountMsat = amountMsat,
            Timestamp = DateTimeOffset.FromUnixTimeSeconds(timestamp),
            Expiry = TimeSpan.FromSeconds(Math.Min(expiry, (ulong)TimeSpan.MaxValue.TotalSeconds / 2)),
            PaymentHash = paymentHash,
            PaymentSecret = secret,
            Description = description,
            DescriptionHash = descriptionHash,
            PayeeNodeId = payee,
            MinFinalCltvExpiryDelta = cltv,
        };
        return true;
    }

    private static int? UnknownEvenFeature(ReadOnlySpan<byte> field)
    {
        for (var w = 0; w < field.Length; w++)
        {
            for (var b = 0; b < 5; b++)
            {
                if (((field[field.Length - 1 - w] >> b) & 1) == 0)
                {
                    continue;
                }

                var bit = w * 5 + b;
                if (bit % 2 == 0 && Array.IndexOf(KnownFeatureBits, bit) < 0)
                {
                    return bit;
                }
            }
        }

        return null;
    }

    private static ulong ReadUInt(ReadOnlySpan<byte> words)
    {
        ulong value = 0;
        foreach (var w in words)
        {
            value = (value << 5) | w;
        }

        return value;
    }

    private static byte[] Bytes(ReadOnlySpan<byte> words) => Bech32Words.ConvertBits(words, 5, 8, pad: false);
}
