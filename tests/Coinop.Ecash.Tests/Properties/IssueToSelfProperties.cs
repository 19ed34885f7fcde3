using Coinop.Ecash.Crypto;
using Coinop.Ecash.Keysets;
using Coinop.Ecash.Wallet;
using CsCheck;
using BigInteger = Org.BouncyCastle.Math.BigInteger;

namespace Coinop.Ecash.Tests.Properties;

/// <summary>The mint's shortcut for its own change must give exactly what the wallet round trip gives.</summary>
public class IssueToSelfProperties
{
    private static readonly MintKeyset Keyset = MintKeyset.Derive(new byte[32], 7, "sat", 0);
    private static readonly KeysetKeys PublicKeys = KeysetKeys.Parse(Keyset.PublicKeysHex);

    private static readonly Gen<BigInteger> Scalar = Gen.OneOf(
        Gen.Byte.Array[32].Select(b => Secp256k1.ScalarFromHash(b)),
        Gen.Int[0, 255].Select(bit => BigInteger.One.ShiftLeft(bit).Mod(Secp256k1.N)),
        Gen.Int[1, 64].Select(small => Secp256k1.N.Subtract(BigInteger.ValueOf(small))),
        Gen.Int[0, 64].Select(small => BigInteger.ValueOf(small)));

    [Fact]
    public void A_public_scalar_table_multiplies_like_the_curve()
    {
        var point = Bdhke.HashToCurve("any point");
        var table = new PublicScalarTable(point);
        Scalar.Sample(k =>
        {
            Assert.Equal(Secp256k1.MultiplyG(k), Secp256k1.MultiplyGPublic(k));
            Assert.Equal(point.Multiply(k).Normalize(), table.Multiply(k));
        }, iter: 200);
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
            Assert.Equal(made.Proof.C, Secp256k1.CompressedHex(Bdhke.Unblind(blindSignature, r, key.PublicKey)));
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
        Assert.False(BlindedOutputs.VerifyProofDleq(made.Proof with { Dleq = made.Proof.Dleq! with { R = Secp256k1.ScalarHex(BigInteger.Two) } }, PublicKeys));
        Assert.False(BlindedOutputs.VerifyProofDleq(made.Proof with { Amount = 16 }, PublicKeys));
    }
}
