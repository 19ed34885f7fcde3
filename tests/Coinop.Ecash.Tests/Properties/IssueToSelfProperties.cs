using Coinop.Ecash.Crypto;
using Coinop.Ecash.Keysets;
using Coinop.Ecash.Wallet;
using CsCheck;
using NBitcoin.Secp256k1;
using Secp256k1 = Coinop.Ecash.Crypto.Secp256k1;

namespace Coinop.Ecash.Tests.Properties;

/// <summary>The mint's shortcut for its own change must give exactly what the wallet round trip gives.</summary>
public class IssueToSelfProperties
{
    private static readonly MintKeyset Keyset = MintKeyset.Derive(new byte[32], 7, "sat", 0);
    private static readonly KeysetKeys PublicKeys = KeysetKeys.Parse(Keyset.PublicKeysHex);

    /// <summary>Random scalars and the edges: powers of two, n - small, small (never zero: no multiplication takes it).</summary>
    private static readonly Gen<Scalar> Scalars = Gen.OneOf(
        Gen.Byte.Array[32].Select(b => Secp256k1.ScalarFromHash(b)).Where(k => !k.IsZero),
        Gen.Int[0, 255].Select(bit => PowerOfTwo(bit)),
        Gen.UInt[1, 64].Select(small => new Scalar(small).Negate()),
        Gen.UInt[1, 64].Select(small => new Scalar(small)));

    /// <summary>
    /// libsecp256k1 (native, what the mint and wallet use) against NBitcoin.Secp256k1's managed port, an independent
    /// implementation: k·G, k·P (variable-time and constant-time), P + t·G, P + Q and P - Q agree for random and edge scalars.
    /// </summary>
    [Fact]
    public void Point_operations_agree_with_an_independent_implementation()
    {
        var point = Bdhke.HashToCurve("any point");
        Assert.True(GE.TryParse(Secp256k1.Compressed(point), out var reference));
        Gen.Select(Scalars, Scalars).Sample((k, t) =>
        {
            var kP = ECMultContext.Instance.Mult(reference.ToGroupElementJacobian(), k, null).ToGroupElement();
            Assert.Equal(Hex(ECMultGenContext.Instance.MultGen(k).ToGroupElement()), Secp256k1.CompressedHex(Secp256k1.MultiplyG(k)));
            Assert.Equal(Hex(kP), Secp256k1.CompressedHex(Secp256k1.Multiply(point, k)));
            Assert.Equal(Hex(kP), Secp256k1.CompressedHex(Secp256k1.MultiplySecret(point, k)));
            var sum = Secp256k1.AddMultipleOfG(point, t);
            var tG = ECMultGenContext.Instance.MultGen(t);
            Assert.Equal(Hex(tG.AddVariable(reference).ToGroupElement()), sum is null ? "infinity" : Secp256k1.CompressedHex(sum));
            var add = Secp256k1.Add(Secp256k1.Multiply(point, k), Secp256k1.MultiplyG(t));
            Assert.Equal(Hex(tG.AddVariable(kP).ToGroupElement()), add is null ? "infinity" : Secp256k1.CompressedHex(add));
            var difference = Secp256k1.Subtract(Secp256k1.Multiply(point, k), Secp256k1.MultiplyG(t));
            Assert.Equal(Hex(tG.Negate().AddVariable(kP).ToGroupElement()), difference is null ? "infinity" : Secp256k1.CompressedHex(difference));
        }, iter: 200);
    }

    /// <summary>
    /// The mint's verification (hash_to_curve, k·Y in constant time compared with C in fixed time, nothing allocated) against NBitcoin.Secp256k1:
    /// the same Y for every secret, a C made there verifies, and every other C a payer could send is refused (the other
    /// parity, another prefix, a bit flipped in x, an x at or above p, a wrong length, non-hex text).
    /// </summary>
    [Fact]
    public void Proof_verification_agrees_with_an_independent_implementation_and_refuses_every_other_C()
    {
        var p = Convert.FromHexString("fffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2f");
        Gen.Select(Gen.String[1, 100], Scalars, Gen.Int[0, 255]).Sample((secret, k, bit) =>
        {
            var y = ReferenceHashToCurve(secret);
            Assert.Equal(Hex(y), Secp256k1.CompressedHex(Bdhke.HashToCurve(secret)));
            var c = Convert.FromHexString(Hex(ECMultContext.Instance.Mult(y.ToGroupElementJacobian(), k, null).ToGroupElement()));
            Assert.True(Bdhke.Verify(k, secret, c));

            byte[] With(Action<byte[]> change)
            {
                var copy = (byte[])c.Clone();
                change(copy);
                return copy;
            }

            Assert.False(Bdhke.Verify(k, secret, With(b => b[0] ^= 1))); // 02 <-> 03: -C
            Assert.False(Bdhke.Verify(k, secret, With(b => b[0] = 4)));
            Assert.False(Bdhke.Verify(k, secret, With(b => b[0] = 0)));
            Assert.False(Bdhke.Verify(k, secret, With(b => b[1 + bit / 8] ^= (byte)(1 << (bit % 8)))));
            Assert.False(Bdhke.Verify(k, secret, With(b => p.CopyTo(b, 1))));
            Assert.False(Bdhke.Verify(k, secret, c.AsSpan(0, 32)));
            Assert.False(Bdhke.Verify(k, secret, [.. c, 0]));
        }, iter: 200);

        var proof = BlindedOutputs.Unblind(BlindedOutputs.Create(Keyset.Id, [8]) is var outputs ? outputs : null!,
            [Keyset.Sign(8, Secp256k1.ParsePoint(outputs[0].Message.B))], _ => PublicKeys)[0];
        Assert.True(Keyset.Verify(proof));
        Assert.True(Keyset.Verify(proof with { C = proof.C.ToUpperInvariant() })); // the same bytes
        Assert.False(Keyset.Verify(proof with { C = "zz" + proof.C[2..] }));
        Assert.False(Keyset.Verify(proof with { C = proof.C[..64] }));
        Assert.False(Keyset.Verify(proof with { C = proof.C + "00" }));
        Assert.False(Keyset.Verify(proof with { Amount = 16 }));
    }

    /// <summary>NUT-00 hash_to_curve written against NBitcoin.Secp256k1's field and group types.</summary>
    private static GE ReferenceHashToCurve(string secret)
    {
        var msgHash = System.Security.Cryptography.SHA256.HashData([.. "Secp256k1_HashToCurve_Cashu_"u8, .. System.Text.Encoding.UTF8.GetBytes(secret)]);
        for (uint counter = 0; ; counter++)
        {
            var hash = System.Security.Cryptography.SHA256.HashData([.. msgHash, .. BitConverter.GetBytes(counter)]); // little-endian here
            if (FE.TryCreate(hash, out var x) && GE.TryCreateXOVariable(x, odd: false, out var point))
            {
                return point;
            }
        }
    }

    private static Scalar PowerOfTwo(int bit)
    {
        var bytes = new byte[32];
        bytes[31 - bit / 8] = (byte)(1 << (bit % 8));
        return new Scalar(bytes);
    }

    private static string Hex(GE p)
    {
        if (p.IsInfinity)
        {
            return "infinity";
        }

        var x = p.x.NormalizeVariable();
        var y = p.y.NormalizeVariable();
        return (y.IsOdd ? "03" : "02") + Convert.ToHexStringLower(x.ToBytes());
    }

    [Fact]
    public void Change_the_mint_makes_for_itself_verifies_like_a_signed_and_unblinded_proof()
    {
        Gen.Int[0, 63].Sample(bit =>
        {
            var amount = 1UL << bit;
            Assert.True(Keyset.TryGetKey(amount, out var key));
            var made = Keyset.IssueToSelf(amount);

            // The proof: the mint accepts it, and a receiver's NUT-12 check (with r) passes.
            Assert.Equal(amount, made.Proof.Amount);
            Assert.Equal(Keyset.Id, made.Proof.Id);
            Assert.True(Keyset.Verify(made.Proof));
            Assert.True(BlindedOutputs.VerifyProofDleq(made.Proof, PublicKeys));

            // The record: B_ = Y + rG, C_ = kB_ with its DLEQ proof, and unblinding C_ gives the proof's C.
            var r = Secp256k1.ParseScalar(made.Proof.Dleq!.R!);
            var blinded = Secp256k1.ParsePoint(made.Message.B);
            var blindSignature = Secp256k1.ParsePoint(made.Signature.C);
            Assert.Equal(Bdhke.Blind(made.Proof.Secret, r), blinded);
            Assert.Equal(Bdhke.Sign(key.PrivateKey, blinded), blindSignature);
            Assert.Equal(made.Proof.C, Secp256k1.CompressedHex(Bdhke.Unblind(blindSignature, r, key.PublicKey)!));
            var dleq = new DleqValues(Secp256k1.ParseScalar(made.Signature.Dleq!.E), Secp256k1.ParseScalar(made.Signature.Dleq.S));
            Assert.True(Dleq.Verify(key.PublicKey, blinded, blindSignature, dleq));
            Assert.Equal(made.Message.B, Secp256k1.CompressedHex(made.Blinded));
        }, iter: 64);
    }

    [Fact]
    public void A_tampered_self_issued_proof_fails_the_checks()
    {
        var made = Keyset.IssueToSelf(8);
        Assert.False(Keyset.Verify(made.Proof with { Secret = made.Proof.Secret + "0" }));
        Assert.False(BlindedOutputs.VerifyProofDleq(made.Proof with { Dleq = made.Proof.Dleq! with { R = Secp256k1.ScalarHex(new Scalar(2u)) } }, PublicKeys));
        Assert.False(BlindedOutputs.VerifyProofDleq(made.Proof with { Amount = 16 }, PublicKeys));
    }
}
