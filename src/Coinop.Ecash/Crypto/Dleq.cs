using System.Security.Cryptography;
using System.Text;
using Scalar = NBitcoin.Secp256k1.Scalar;

namespace Coinop.Ecash.Crypto;

/// <summary>A NUT-12 discrete-log-equality proof: <c>e</c> and <c>s</c>.</summary>
public readonly record struct DleqValues(Scalar E, Scalar S);

/// <summary>
/// NUT-12: the mint proves it signed <c>B_</c> with the same key <c>a</c> as its published <c>A = aG</c>, so a
/// wallet (and anyone the wallet hands <c>r</c> to) can check a signature without asking the mint.
/// </summary>
public static class Dleq
{
    private static readonly byte[] NonceTag = "Cashu_DLEQ_R_v1"u8.ToArray();

    /// <summary>Creates the proof with the deterministic, rejection-sampled nonce the spec recommends.</summary>
    public static DleqValues Create(in Scalar a, CurvePoint publicKey, CurvePoint blinded, CurvePoint blindSignature)
    {
        var aBytes = Secp256k1.ScalarBytes(a);
        var data = new byte[NonceTag.Length + 65 * 3 + 1];
        NonceTag.CopyTo(data, 0);
        Secp256k1.Uncompressed(publicKey).CopyTo(data, NonceTag.Length);
        Secp256k1.Uncompressed(blinded).CopyTo(data, NonceTag.Length + 65);
        Secp256k1.Uncompressed(blindSignature).CopyTo(data, NonceTag.Length + 130);
        for (var ctr = 0; ctr < 256; ctr++)
        {
            data[^1] = (byte)ctr;
            var r = new Scalar(HMACSHA256.HashData(aBytes, data), out var overflow);
            if (overflow != 0 || r.IsZero)
            {
                continue;
            }

            var r1 = Secp256k1.MultiplyG(r);
            var r2 = Secp256k1.MultiplySecret(blinded, r); // the nonce: constant time
            var e = Secp256k1.ScalarFromHash(HashE(r1, r2, publicKey, blindSignature));
            var s = r + e * a;
            return new DleqValues(e, s);
        }

        throw new CryptographicException("no DLEQ nonce found in 256 tries");
    }

    /// <summary>Checks a proof on a blind signature: <c>e == hash(sG - eA, sB_ - eC_, A, C_)</c>.</summary>
    public static bool Verify(CurvePoint publicKey, CurvePoint blinded, CurvePoint blindSignature, DleqValues proof)
    {
        if (proof.S.IsZero || proof.E.IsZero)
        {
            return false;
        }

        var r1 = Secp256k1.Subtract(Secp256k1.MultiplyG(proof.S), Secp256k1.Multiply(publicKey, proof.E));
        var r2 = Secp256k1.Subtract(Secp256k1.Multiply(blinded, proof.S), Secp256k1.Multiply(blindSignature, proof.E));
        if (r1 is null || r2 is null)
        {
            return false;
        }

        // e is compared as the hash's 32 bytes: a hash at or above n can never equal a parsed e.
        var hash = HashE(r1, r2, publicKey, blindSignature);
        return hash.AsSpan().SequenceEqual(Secp256k1.ScalarBytes(proof.E));
    }

    /// <summary>Checks a proof carried in a <see cref="Proof"/>: rebuilds <c>B_ = Y + rG</c> and <c>C_ = C + rA</c> first.</summary>
    public static bool VerifyProof(CurvePoint publicKey, string secret, CurvePoint signature, DleqValues proof, in Scalar r)
    {
        var blinded = Bdhke.TryBlind(Bdhke.HashToCurve(secret), r); // B_ exactly as the wallet made it
        var blindSignature = Secp256k1.Add(signature, Secp256k1.MultiplySecret(publicKey, r));
        return blinded is not null && blindSignature is not null && Verify(publicKey, blinded, blindSignature, proof);
    }

    /// <summary><c>hash_e</c>: SHA-256 of the concatenated lowercase hex of each point's uncompressed encoding.</summary>
    public static byte[] HashE(params ReadOnlySpan<CurvePoint> points)
    {
        var text = new StringBuilder(130 * points.Length);
        foreach (var p in points)
        {
            text.Append(Convert.ToHexStringLower(Secp256k1.Uncompressed(p)));
        }

        return SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString()));
    }
}
