using System.Diagnostics.CodeAnalysis;
using Org.BouncyCastle.Asn1.X9;
using Org.BouncyCastle.Crypto.EC;
using Org.BouncyCastle.Math;
using Org.BouncyCastle.Math.EC;
using Org.BouncyCastle.Math.EC.Multiplier;

namespace Coinop.Ecash.Crypto;

/// <summary>
/// The secp256k1 curve (BouncyCastle's custom implementation, several times faster than the generic one)
/// and the parsing rules Cashu needs: points as 33-byte SEC1 compressed keys, scalars as 32-byte big-endian.
/// </summary>
public static class Secp256k1
{
    private static readonly X9ECParameters Parameters = CustomNamedCurves.GetByName("secp256k1");
    private static readonly FixedPointCombMultiplier BaseMultiplier = new();
    private static readonly Lazy<PublicScalarTable> GTable = new(() => new PublicScalarTable(Parameters.G));

    public static ECCurve Curve { get; } = Parameters.Curve;

    public static ECPoint G { get; } = Parameters.G;

    /// <summary>The group order n.</summary>
    public static BigInteger N { get; } = Parameters.N;

    /// <summary>k·G with the fixed-point comb (precomputed tables on G, lookups in constant time).</summary>
    public static ECPoint MultiplyG(BigInteger k) => BaseMultiplier.Multiply(G, k).Normalize();

    /// <summary>k·G for a scalar that is not secret, about three times faster than <see cref="MultiplyG"/> (see <see cref="PublicScalarTable"/>).</summary>
    public static ECPoint MultiplyGPublic(BigInteger k) => GTable.Value.Multiply(k);

    /// <summary>Parses a compressed point (02/03 prefix, 33 bytes); rejects anything else, including infinity.</summary>
    public static bool TryParsePoint(ReadOnlySpan<byte> bytes, [NotNullWhen(true)] out ECPoint? point)
    {
        point = null;
        if (bytes.Length != 33 || (bytes[0] != 2 && bytes[0] != 3))
        {
            return false;
        }

        try
        {
            var p = Curve.DecodePoint(bytes.ToArray());
            if (p.IsInfinity || !p.IsValid())
            {
                return false;
            }

            point = p;
            return true;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    public static bool TryParsePoint(string? hex, [NotNullWhen(true)] out ECPoint? point)
    {
        point = null;
        return hex is { Length: 66 } && Hex.TryDecode(hex, out var bytes) && TryParsePoint(bytes, out point);
    }

    public static ECPoint ParsePoint(string hex) =>
        TryParsePoint(hex, out var p) ? p : throw new FormatException($"'{Trim(hex)}' is not a compressed secp256k1 point");

    /// <summary>Parses a 32-byte big-endian scalar in [1, n).</summary>
    public static bool TryParseScalar(string? hex, [NotNullWhen(true)] out BigInteger? scalar)
    {
        scalar = null;
        if (hex is not { Length: 64 } || !Hex.TryDecode(hex, out var bytes))
        {
            return false;
        }

        var k = new BigInteger(1, bytes);
        if (k.SignValue == 0 || k.CompareTo(N) >= 0)
        {
            return false;
        }

        scalar = k;
        return true;
    }

    public static BigInteger ParseScalar(string hex) =>
        TryParseScalar(hex, out var k) ? k : throw new FormatException($"'{Trim(hex)}' is not a secp256k1 scalar");

    /// <summary>A scalar from any 32 bytes (a hash), reduced mod n.</summary>
    public static BigInteger ScalarFromHash(ReadOnlySpan<byte> hash) => new BigInteger(1, hash.ToArray()).Mod(N);

    /// <summary>A fresh uniformly random scalar in [1, n).</summary>
    public static BigInteger RandomScalar()
    {
        Span<byte> bytes = stackalloc byte[32];
        while (true)
        {
            System.Security.Cryptography.RandomNumberGenerator.Fill(bytes);
            var k = new BigInteger(1, bytes.ToArray());
            if (k.SignValue > 0 && k.CompareTo(N) < 0)
            {
                return k;
            }
        }
    }

    public static byte[] Compressed(ECPoint point) => point.Normalize().GetEncoded(true);

    public static string CompressedHex(ECPoint point) => Convert.ToHexStringLower(Compressed(point));

    public static byte[] Uncompressed(ECPoint point) => point.Normalize().GetEncoded(false);

    /// <summary>A scalar as 32 big-endian bytes.</summary>
    public static byte[] ScalarBytes(BigInteger k) => BigIntegers32(k);

    public static string ScalarHex(BigInteger k) => Convert.ToHexStringLower(BigIntegers32(k));

    private static byte[] BigIntegers32(BigInteger k)
    {
        var raw = k.ToByteArrayUnsigned();
        if (raw.Length == 32)
        {
            return raw;
        }

        var padded = new byte[32];
        raw.CopyTo(padded, 32 - raw.Length);
        return padded;
    }

    private static string Trim(string? s) => s is null ? "null" : s.Length > 80 ? s[..80] + "…" : s;
}
