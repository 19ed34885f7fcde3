using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using Coinop.Ecash.Crypto;

namespace Coinop.Ecash.Keysets;

/// <summary>The public keys of a keyset by amount, parsed and checked (NUT-01: compressed points, power-of-two amounts).</summary>
public sealed class KeysetKeys
{
    private KeysetKeys(SortedDictionary<ulong, CurvePoint> points, SortedDictionary<ulong, string> hex)
    {
        Points = points;
        Hex = hex;
    }

    public IReadOnlyDictionary<ulong, CurvePoint> Points { get; }

    /// <summary>The same keys as lowercase compressed hex (what ids are derived from).</summary>
    public IReadOnlyDictionary<ulong, string> Hex { get; }

    /// <summary>Parses the <c>keys</c> object of a keys response; returns false with a reason for anything malformed.</summary>
    public static bool TryParse(IReadOnlyDictionary<string, string> keys, [NotNullWhen(true)] out KeysetKeys? parsed, out string error)
    {
        parsed = null;
        var points = new SortedDictionary<ulong, CurvePoint>();
        var hex = new SortedDictionary<ulong, string>();
        if (keys.Count == 0)
        {
            error = "the keyset has no keys";
            return false;
        }

        foreach (var (amountText, keyHex) in keys)
        {
            if (!ulong.TryParse(amountText, NumberStyles.None, CultureInfo.InvariantCulture, out var amount) || !Amounts.IsPowerOfTwo(amount))
            {
                error = $"'{amountText}' is not a power-of-two amount";
                return false;
            }

            if (!Secp256k1.TryParsePoint(keyHex, out var point))
            {
                error = $"the key for amount {amountText} is not a compressed secp256k1 point";
                return false;
            }

            points[amount] = point;
            hex[amount] = keyHex.ToLowerInvariant();
        }

        parsed = new KeysetKeys(points, hex);
        error = "";
        return true;
    }

    public static KeysetKeys Parse(IReadOnlyDictionary<string, string> keys) =>
        TryParse(keys, out var parsed, out var error) ? parsed : throw new FormatException(error);

    /// <summary>Does <paramref name="id"/> match these keys (v1, or v2 with the given unit, fee and expiry)?</summary>
    public bool Matches(string id, string unit, ulong inputFeePpk, long? finalExpiry) =>
        id.Length == KeysetId.V1HexLength
            ? string.Equals(KeysetId.DeriveV1(Hex), id, StringComparison.OrdinalIgnoreCase)
            : string.Equals(KeysetId.DeriveV2(Hex, unit, inputFeePpk, finalExpiry), id, StringComparison.OrdinalIgnoreCase);
}
