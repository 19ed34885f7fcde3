using System.Security.Cryptography;
using System.Text;
using Org.BouncyCastle.Math;
using ECPoint = Org.BouncyCastle.Math.EC.ECPoint;

namespace Coinop.Ecash.Crypto;

/// <summary>A NUT-12 discrete-log-equality proof: <c>e</c>, <c>s</c> and, when a wallet passes it on, the blinding factor <c>r</c>.</summary>
public readonly record struct DleqValues(BigInteger E, BigInteger S);

/// <summary>
/// NUT-12: the mint proves it signed <c>B_</c> with the same key <c>a</c> as its published <c>A = aG</c>, so a
/// wallet (and anyone the wallet hands <c>r</c> to) can check a signature without asking the mint.
/// </summary>
public static class Dleq
{
    private static readonly byte[] NonceTag = "Cashu_DLEQ_R_v1"u8.ToArray();

    /// <summary>Creates the proof with the deterministic, rejection-sampled nonce the spec recommends.</summary>
    public static DleqValues Create(BigInteger a, ECPoint publicKey, ECPoint blinded, ECPoint blindSignature)
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
            var r = new BigInteger(1, HMACSHA256.HashData(aBytes, data));
            if (r.SignValue == 0 || r.CompareTo(Secp256k1.N) >= 0)
            {
                continue;
            }

            var r1 = Secp256k1.MultiplyG(r);
            var r2 = blinded.Multiply(r).Normalize();
            var e = new BigInteger(1, HashE(r1, r2, publicKey, blindSignature));
            var s = r.Add(e.Multiply(a)).Mod(Secp256k1.N);
            return new DleqValues(e, s);
        }

        throw new CryptographicException("no DLEQ nonce found in 256 tries");
    }

    /// <summary>Checks a proof on a blind signature: <c>e == hash(sG - eA, sB_ - eC_, A, C_)</c>.</summary>
    public static bool Verify(ECPoint publicKey, ECPoint blinded, ECPoint blindSignature, DleqValues proof)
    {
        if (proof.S.SignValue <= 0 || proof.S.CompareTo(Secp256k1.N) >= 0 || proof.E.SignValue <= 0)
        {
            return false;
        }

        var r1 = Secp256k1.MultiplyG(proof.S).Subtract(publicKey.Multiply(proof.E)).Normalize();
        var r2 = blinded.Multiply(proof.S).Subtract(blindSignature.Multiply(proof.E)).Normalize();
        if (r1.IsInfinity || r2.IsInfinity)
        {
            return false;
        }

        return new BigInteger(1, HashE(r1, r2, publicKey, blindSignature)).Equals(proof.E);
    }

    /// <summary>Checks a proof carried in a <see cref="Proof"/>: rebuilds <c>B_ = Y + rG</c> and <c>C_ = C + rA</c> first.</summary>
    public static bool VerifyProof(ECPoint publicKey, string secret, ECPoint signature, DleqValues proof, BigInteger r)
    {
        var blinded = Bdhke.Blind(secret, r);
        var blindSignature = signature.Add(publicKey.Multiply(r)).Normalize();
        return Verify(publicKey, blinded, blindSignature, proof);
    }

    /// <summary><c>hash_e</c>: SHA-256 of the concatenated lowercase hex of each point's uncompressed encoding.</summary>
    public static byte[] HashE(params ReadOnlySpan<ECPoint> points)
    {
        var text = new StringBuilder(130 * points.Length);
        foreach (var p in points)
        {
            text.Append(Convert.ToHexStringLower(Secp256k1.Uncompressed(p)));
        }

        return SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString()));
    }
}
