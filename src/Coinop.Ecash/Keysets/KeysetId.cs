using System.Security.Cryptography;
using System.Text;

namespace Coinop.Ecash.Keysets;

/// <summary>
/// NUT-02 keyset ids. Version 2 (<c>01</c> + SHA-256 of the keys, unit, fee and expiry; 33 bytes) is what this
/// code creates; version 1 (<c>00</c> + 7 bytes of SHA-256 of the keys) is accepted on input. Tokens may carry
/// the 8-byte short form of a v2 id, resolved against the keysets a wallet or mint knows.
/// </summary>
public static class KeysetId
{
    public const int V1HexLength = 16;
    public const int V2HexLength = 66;

    /// <summary>True for a well-formed v1 or v2 id (lowercase or uppercase hex).</summary>
    public static bool IsWellFormed(string? id) =>
        id switch
        {
            { Length: V1HexLength } when id.StartsWith("00", StringComparison.Ordinal) => Crypto.Hex.TryDecode(id, out _),
            { Length: V2HexLength } when id.StartsWith("01", StringComparison.Ordinal) => Crypto.Hex.TryDecode(id, out _),
            _ => false,
        };

    /// <summary>The version-2 id of a keyset; <paramref name="keys"/> are compressed public keys in hex by amount.</summary>
    public static string DeriveV2(IReadOnlyDictionary<ulong, string> keys, string unit, ulong inputFeePpk = 0, long? finalExpiry = null)
    {
        var preimage = new StringBuilder();
        foreach (var (amount, key) in keys.OrderBy(k => k.Key))
        {
            if (preimage.Length > 0)
            {
                preimage.Append(',');
            }

            preimage.Append(amount).Append(':').Append(key.ToLowerInvariant());
        }

        preimage.Append("|unit:").Append(unit.ToLowerInvariant());
        if (inputFeePpk != 0)
        {
            preimage.Append("|input_fee_ppk:").Append(inputFeePpk);
        }

        if (finalExpiry is { } expiry and not 0)
        {
            preimage.Append("|final_expiry:").Append(expiry);
        }

        return "01" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(preimage.ToString())));
    }

    /// <summary>The deprecated version-1 id: <c>00</c> + the first 7 bytes of SHA-256 over the concatenated keys.</summary>
    public static string DeriveV1(IReadOnlyDictionary<ulong, string> keys)
    {
        var concatenated = keys.OrderBy(k => k.Key).SelectMany(k => Convert.FromHexString(k.Value)).ToArray();
        return "00" + Convert.ToHexStringLower(SHA256.HashData(concatenated))[..14];
    }

    /// <summary>The 8-byte short id used in V4 tokens (v1 ids are already that short).</summary>
    public static string Short(string id) => id.Length > V1HexLength ? id[..V1HexLength] : id;

    /// <summary>
    /// Resolves an id from a token (full or short) against known full ids. Returns null when nothing matches;
    /// throws when a short id matches more than one keyset (NUT-00 says such a token must be refused).
    /// </summary>
    public static string? Resolve(string id, IEnumerable<string> known)
    {
        var lower = id.ToLowerInvariant();
        string? found = null;
        foreach (var k in known)
        {
            var candidate = k.ToLowerInvariant();
            if (candidate == lower)
            {
                return k;
            }

            if (lower.Length == V1HexLength && candidate.Length == V2HexLength && candidate.StartsWith(lower, StringComparison.Ordinal))
            {
                if (found is not null && found != k)
                {
                    throw new FormatException($"short keyset id {id} is ambiguous");
                }

                found = k;
            }
        }

        return found;
    }
}
