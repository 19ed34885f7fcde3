using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Org.BouncyCastle.Math;
using ECPoint = Org.BouncyCastle.Math.EC.ECPoint;

namespace Coinop.Ecash.Crypto;

/// <summary>
/// NUT-00 blind Diffie-Hellman key exchange: the wallet blinds <c>Y = hash_to_curve(secret)</c> as
/// <c>B_ = Y + rG</c>, the mint signs <c>C_ = kB_</c>, the wallet unblinds <c>C = C_ - rK = kY</c>, and the mint
/// later verifies <c>kY == C</c>.
/// </summary>
public static class Bdhke
{
    private static readonly byte[] DomainSeparator = "Secp256k1_HashToCurve_Cashu_"u8.ToArray();
    private static readonly BigInteger FieldPrime = Secp256k1.Curve.Field.Characteristic;

    /// <summary>Maps a message to a curve point: the first <c>02 || SHA256(SHA256(domain || msg) || counter_le32)</c> on the curve.</summary>
    public static ECPoint HashToCurve(ReadOnlySpan<byte> message)
    {
        var rented = ArrayPool<byte>.Shared.Rent(DomainSeparator.Length + message.Length);
        Span<byte> input = stackalloc byte[36];
        try
        {
            DomainSeparator.CopyTo(rented, 0);
            message.CopyTo(rented.AsSpan(DomainSeparator.Length));
            SHA256.HashData(rented.AsSpan(0, DomainSeparator.Length + message.Length), input[..32]);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }

        Span<byte> hash = stackalloc byte[32];
        for (uint counter = 0; counter < uint.MaxValue; counter++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(input[32..], counter);
            SHA256.HashData(input, hash);
            var x = new BigInteger(1, hash.ToArray());
            if (x.CompareTo(FieldPrime) >= 0)
            {
                continue;
            }

            // Solve y² = x³ + 7 directly: cheaper than letting DecodePoint throw for the half of x that has no root.
            var fx = Secp256k1.Curve.FromBigInteger(x);
            var y = fx.Square().Multiply(fx).Add(Secp256k1.Curve.B).Sqrt();
            if (y is null)
            {
                continue;
            }

            if (y.TestBitZero())
            {
                y = y.Negate(); // the 02 prefix means even y
            }

            return Secp256k1.Curve.CreatePoint(x, y.ToBigInteger());
        }

        throw new CryptographicException("hash_to_curve found no point"); // unreachable in practice
    }

    /// <summary>hash_to_curve of a proof secret (its UTF-8 bytes).</summary>
    public static ECPoint HashToCurve(string secret)
    {
        var max = Encoding.UTF8.GetMaxByteCount(secret.Length);
        if (max <= 512)
        {
            Span<byte> buffer = stackalloc byte[max];
            var n = Encoding.UTF8.GetBytes(secret, buffer);
            return HashToCurve(buffer[..n]);
        }

        return HashToCurve(Encoding.UTF8.GetBytes(secret));
    }

    /// <summary>The proof's <c>Y</c>, as the mint indexes spent proofs by it (NUT-07).</summary>
    public static byte[] Y(string secret) => Secp256k1.Compressed(HashToCurve(secret));

    /// <summary>Wallet: <c>B_ = Y + rG</c>.</summary>
    public static ECPoint Blind(ECPoint y, BigInteger r) => y.Add(Secp256k1.MultiplyG(r)).Normalize();

    public static ECPoint Blind(string secret, BigInteger r) => Blind(HashToCurve(secret), r);

    /// <summary>Mint: <c>C_ = kB_</c>.</summary>
    public static ECPoint Sign(BigInteger k, ECPoint blinded) => blinded.Multiply(k).Normalize();

    /// <summary>Wallet: <c>C = C_ - rK</c>.</summary>
    public static ECPoint Unblind(ECPoint blindSignature, BigInteger r, ECPoint mintKey) =>
        blindSignature.Subtract(mintKey.Multiply(r)).Normalize();

    /// <summary>Mint: does <paramref name="signature"/> (compressed <c>C</c>) equal <c>k · hash_to_curve(secret)</c>?</summary>
    /// <remarks>Compares encodings, so <c>C</c> is never decompressed (a square root saved per proof).</remarks>
    public static bool Verify(BigInteger k, ECPoint y, ReadOnlySpan<byte> signature)
    {
        if (signature.Length != 33)
        {
            return false;
        }

        var expected = y.Multiply(k).Normalize();
        return !expected.IsInfinity && expected.GetEncoded(true).AsSpan().SequenceEqual(signature);
    }

    public static bool Verify(BigInteger k, string secret, ReadOnlySpan<byte> signature) => Verify(k, HashToCurve(secret), signature);
}
