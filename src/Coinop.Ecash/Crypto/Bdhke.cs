using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Scalar = NBitcoin.Secp256k1.Scalar;

namespace Coinop.Ecash.Crypto;

/// <summary>
/// NUT-00 blind Diffie-Hellman key exchange: the wallet blinds <c>Y = hash_to_curve(secret)</c> as
/// <c>B_ = Y + rG</c>, the mint signs <c>C_ = kB_</c>, the wallet unblinds <c>C = C_ - rK = kY</c>, and the mint
/// later verifies <c>kY == C</c>.
/// </summary>
public static class Bdhke
{
    private static readonly byte[] DomainSeparator = "Secp256k1_HashToCurve_Cashu_"u8.ToArray();

    // One SHA-256 object per thread, reset after each hash: about 0.15 µs less per hash than SHA256.HashData, which
    // sets up and frees OpenSSL's digest context every call (hash_to_curve hashes three times on average).
    [ThreadStatic]
    private static IncrementalHash? _sha256;

    /// <summary>Maps a message to a curve point: the first <c>02 || SHA256(SHA256(domain || msg) || counter_le32)</c> on the curve.</summary>
    public static CurvePoint HashToCurve(ReadOnlySpan<byte> message)
    {
        var sha256 = _sha256 ??= IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Span<byte> input = stackalloc byte[36];
        sha256.AppendData(DomainSeparator);
        sha256.AppendData(message);
        sha256.GetHashAndReset(input[..32]);

        // Half of all x have no point: a Legendre symbol rules those out cheaply (CurveX); libsecp256k1 parses the
        // rest (02 || x, one square root) and has the last word.
        Span<byte> candidate = stackalloc byte[33];
        candidate[0] = 2;
        for (uint counter = 0; counter < uint.MaxValue; counter++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(input[32..], counter);
            sha256.AppendData(input);
            sha256.GetHashAndReset(candidate[1..]);
            if (CurveX.MayHavePoint(candidate[1..]) && Secp256k1.TryParsePoint(candidate, out var point))
            {
                return point;
            }
        }

        throw new CryptographicException("hash_to_curve found no point"); // unreachable in practice
    }

    /// <summary>hash_to_curve of a proof secret (its UTF-8 bytes).</summary>
    public static CurvePoint HashToCurve(string secret)
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
    /// <remarks>
    /// rG by libsecp256k1's constant-time generator multiplication, then one addition: r is secret (it links B_ to Y),
    /// and pubkey_tweak_add would multiply by it in variable time.
    /// </remarks>
    public static CurvePoint Blind(CurvePoint y, in Scalar r) =>
        TryBlind(y, r) ?? throw new CryptographicException("the blinding factor cancels Y"); // r = -log(Y): never by chance

    /// <summary><c>B_ = Y + rG</c> as <see cref="Blind(CurvePoint, in Scalar)"/> makes it; null when that is infinity.</summary>
    public static CurvePoint? TryBlind(CurvePoint y, in Scalar r) => Secp256k1.Add(y, Secp256k1.MultiplyG(r));

    public static CurvePoint Blind(string secret, in Scalar r) => Blind(HashToCurve(secret), r);

    /// <summary>Mint: <c>C_ = kB_</c>, in constant time (k is the mint's private key; B_ is anyone's choice).</summary>
    public static CurvePoint Sign(in Scalar k, CurvePoint blinded) => Secp256k1.MultiplySecret(blinded, k);

    /// <summary>Wallet: <c>C = C_ - rK</c>; null when that is infinity (a mint that signed with something else than K).</summary>
    public static CurvePoint? Unblind(CurvePoint blindSignature, in Scalar r, CurvePoint mintKey) =>
        Secp256k1.Subtract(blindSignature, Secp256k1.MultiplySecret(mintKey, r));

    /// <summary>Mint: does <paramref name="signature"/> (compressed <c>C</c>) equal <c>k · hash_to_curve(secret)</c>?</summary>
    /// <remarks>
    /// k·Y in constant time (k is the mint's private key); compares encodings in fixed time, so <c>C</c> is never
    /// decompressed (a square root saved per proof).
    /// </remarks>
    public static bool Verify(in Scalar k, CurvePoint y, ReadOnlySpan<byte> signature)
    {
        Span<byte> key = stackalloc byte[32];
        k.WriteToSpan(key);
        return Secp256k1.MultiplySecretEquals(y.Native, key, signature);
    }

    public static bool Verify(in Scalar k, string secret, ReadOnlySpan<byte> signature) => Verify(k, HashToCurve(secret), signature);
}
