using System.Text.Json;
using Coinop.Ecash.Crypto;
using Coinop.Ecash.Keysets;
using Coinop.Ecash.Wallet;

namespace Coinop.Ecash.Tests.Vectors;

public class Nut12VectorTests
{
    private static readonly List<VectorBlock> Blocks = VectorFile.Load("12-tests.md");

    [Fact]
    public void Hash_e_matches()
    {
        var blocks = Blocks.Under("`hash_e` function").ToList();
        var inputs = blocks[0].Fields();
        var expected = blocks[1].Lines().Single().Split(':')[1].Trim().Trim('"');
        var hash = Dleq.HashE(Secp256k1.ParsePoint(inputs["R1"]), Secp256k1.ParsePoint(inputs["R2"]),
            Secp256k1.ParsePoint(inputs["K"]), Secp256k1.ParsePoint(inputs["C_"]));
        Assert.Equal(expected, Convert.ToHexStringLower(hash));
    }

    [Fact]
    public void Deterministic_nonce_reproduces_e_and_s_exactly()
    {
        var blocks = Blocks.Under("Deterministic nonce derivation").ToList();
        var inputs = blocks[0].Fields();
        var expected = blocks[1].Fields();
        var a = Secp256k1.ParseScalar(inputs["a"]);
        var publicKey = Secp256k1.ParsePoint(inputs["A"]);
        Assert.Equal(inputs["A"], Secp256k1.CompressedHex(Secp256k1.MultiplyG(a)));
        var blinded = Secp256k1.ParsePoint(inputs["B_"]);
        var c = Secp256k1.ParsePoint(inputs["C_"]);
        Assert.Equal(inputs["C_"], Secp256k1.CompressedHex(Bdhke.Sign(a, blinded)));
        var proof = Dleq.Create(a, publicKey, blinded, c);
        Assert.Equal(expected["e"], Secp256k1.ScalarHex(proof.E));
        Assert.Equal(expected["s"], Secp256k1.ScalarHex(proof.S));
        Assert.True(Dleq.Verify(publicKey, blinded, c, proof));
    }

    [Fact]
    public void Dleq_on_a_blind_signature_verifies()
    {
        var blocks = Blocks.Under("DLEQ verification on `BlindSignature`").ToList();
        var inputs = blocks[0].Fields();
        var signature = JsonSerializer.Deserialize<BlindSignature>(blocks[1].Body)!;
        var proof = new DleqValues(Secp256k1.ParseScalar(signature.Dleq!.E), Secp256k1.ParseScalar(signature.Dleq.S));
        var publicKey = Secp256k1.ParsePoint(inputs["A"]);
        var blinded = Secp256k1.ParsePoint(inputs["B_"]);
        Assert.True(Dleq.Verify(publicKey, blinded, Secp256k1.ParsePoint(signature.C), proof));
        Assert.False(Dleq.Verify(publicKey, blinded, Secp256k1.ParsePoint(signature.C), proof with { S = proof.S + NBitcoin.Secp256k1.Scalar.One }));
    }

    [Fact]
    public void Dleq_carried_in_a_proof_verifies()
    {
        var blocks = Blocks.Under("DLEQ verification on `Proof`").ToList();
        var inputs = blocks[0].Fields();
        var proof = JsonSerializer.Deserialize<Proof>(blocks[1].Body)!;
        var keys = KeysetKeys.Parse(new Dictionary<string, string> { [proof.Amount.ToString(System.Globalization.CultureInfo.InvariantCulture)] = inputs["A"] });
        Assert.True(BlindedOutputs.VerifyProofDleq(proof, keys));
        Assert.False(BlindedOutputs.VerifyProofDleq(proof with { Secret = proof.Secret + "x" }, keys));
        Assert.False(BlindedOutputs.VerifyProofDleq(proof with { Dleq = proof.Dleq! with { R = null } }, keys));
    }
}
