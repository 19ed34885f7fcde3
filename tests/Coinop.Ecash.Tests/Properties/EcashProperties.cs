using System.Numerics;
using Coinop.Ecash.Crypto;
using Coinop.Ecash.Keysets;
using Coinop.Ecash.Tests.Vectors;
using Coinop.Ecash.Tokens;
using Coinop.Ecash.Wallet;
using CsCheck;

namespace Coinop.Ecash.Tests.Properties;

public class EcashProperties
{
    private static readonly Gen<string> HexId = Gen.Byte.Array[32].Select(b => "01" + Convert.ToHexStringLower(b));
    private static readonly Gen<string> Hex33 = Gen.Byte.Array[32].Select(b => "02" + Convert.ToHexStringLower(b));
    private static readonly Gen<string> Hex32 = Gen.Byte.Array[32].Select(b => Convert.ToHexStringLower(b));

    private static readonly Gen<DleqProof?> GenDleq =
        Gen.Select(Gen.Bool, Hex32, Hex32, Hex32, (some, e, s, r) => some ? new DleqProof { E = e, S = s, R = r } : null);

    private static Gen<Proof> GenProof(Gen<string> ids) =>
        Gen.Select(Gen.Int[0, 63], ids, Gen.String[1, 80], Hex33, GenDleq,
            (bit, id, secret, c, dleq) => new Proof { Amount = 1UL << bit, Id = id, Secret = secret, C = c, Dleq = dleq });

    private static readonly Gen<Token> GenToken =
        Gen.Select(HexId.Array[1, 3], Gen.String[1, 40], OneOf("sat", "msat", "usd"), Gen.Select(Gen.Bool, Gen.String[0, 30], (some, s) => some ? s : null))
            .SelectMany(t => GenProof(OneOf(t.Item1)).List[1, 12].Select(proofs =>
                new Token("https://" + new string(t.Item2.Where(char.IsAsciiLetterOrDigit).ToArray()) + ".mint", t.Item3, proofs, t.Item4)));

    private static Gen<T> OneOf<T>(params T[] values) => Gen.Int[0, values.Length - 1].Select(i => values[i]);

    [Fact]
    public void V4_tokens_round_trip_with_short_ids_resolved_against_the_keysets()
    {
        GenToken.Sample(token =>
        {
            var ids = token.Proofs.Select(p => p.Id).Distinct().ToList();
            var decoded = TokenCodec.Decode(TokenCodec.EncodeV4(token));
            Assert.All(decoded.Proofs, p => Assert.Equal(16, p.Id.Length));
            var resolved = decoded.ResolveKeysetIds(ids);
            var expected = token with { Proofs = [.. token.Proofs.GroupBy(p => p.Id).SelectMany(g => g)] }; // V4 groups by keyset
            Assert.Equal(expected, resolved, TokenEquality.Instance);
            Assert.Equal(expected, TokenCodec.Decode(TokenCodec.EncodeV4(token, shortKeysetIds: false)), TokenEquality.Instance);
        }, iter: 300);
    }

    [Fact]
    public void V3_tokens_round_trip_in_both_base64_alphabets()
    {
        GenToken.Sample(token =>
        {
            var encoded = TokenCodec.EncodeV3(token);
            Assert.Equal(token, TokenCodec.Decode(encoded), TokenEquality.Instance);
            var standard = "cashuA" + encoded[6..].Replace('-', '+').Replace('_', '/');
            standard = standard.PadRight(standard.Length + (4 - (standard.Length - 6) % 4) % 4, '=');
            Assert.Equal(token, TokenCodec.Decode(standard), TokenEquality.Instance);
        }, iter: 300);
    }

    [Fact]
    public void Garbage_never_decodes_as_anything_but_a_format_error()
    {
        Gen.String.Sample(s =>
        {
            foreach (var text in new[] { s, "cashuA" + s, "cashuB" + s })
            {
                try
                {
                    TokenCodec.Decode(text);
                }
                catch (FormatException)
                {
                }
            }
        }, iter: 2000);
        Gen.Byte.Array[0, 200].Sample(bytes =>
        {
            try
            {
                TokenCodec.Decode("cashuB" + Base64Url.Encode(bytes));
            }
            catch (FormatException)
            {
            }
        }, iter: 2000);
    }

    [Fact]
    public void Splitting_gives_ascending_distinct_powers_of_two_that_sum_to_the_amount()
    {
        Gen.ULong.Sample(amount =>
        {
            var parts = Amounts.Split(amount);
            Assert.All(parts, p => Assert.True(Amounts.IsPowerOfTwo(p)));
            Assert.True(parts.SequenceEqual(parts.Distinct().Order()));
            Assert.True(Amounts.TrySum(parts, out var sum));
            Assert.Equal(amount, sum);
        }, iter: 5000);
    }

    [Fact]
    public void Sums_and_fees_never_overflow()
    {
        Gen.ULong.Array[0, 20].Sample(values =>
        {
            var exact = values.Aggregate(BigInteger.Zero, (a, v) => a + v);
            Assert.Equal(exact <= ulong.MaxValue, Amounts.TrySum(values, out var sum));
            if (exact <= ulong.MaxValue)
            {
                Assert.Equal((ulong)exact, sum);
            }

            var fee = (exact + 999) / 1000;
            Assert.Equal(fee > ulong.MaxValue ? ulong.MaxValue : (ulong)fee, Amounts.InputFee(values));
        }, iter: 5000);
        Assert.Equal(1UL, Amounts.InputFee([100, 100, 100]));
        Assert.Equal(2UL, Amounts.InputFee(Enumerable.Repeat(100UL, 11)));
        Assert.Equal(0UL, Amounts.InputFee([]));
    }

    [Fact]
    public void Blind_sign_unblind_verifies_and_a_wrong_key_does_not()
    {
        Gen.Select(Gen.String[1, 64], Gen.Byte.Array[32], Gen.Byte.Array[32]).Sample(t =>
        {
            var (secret, kBytes, otherBytes) = t;
            var k = Secp256k1.ScalarFromHash(kBytes) + NBitcoin.Secp256k1.Scalar.One;
            var other = Secp256k1.ScalarFromHash(otherBytes) + new NBitcoin.Secp256k1.Scalar(2u);
            var r = Secp256k1.RandomScalar();
            var blinded = Bdhke.Blind(secret, r);
            var c = Bdhke.Unblind(Bdhke.Sign(k, blinded), r, Secp256k1.MultiplyG(k));
            var cBytes = Secp256k1.Compressed(c!);
            Assert.True(Bdhke.Verify(k, secret, cBytes));
            Assert.Equal(k.Equals(other), Bdhke.Verify(other, secret, cBytes));
            Assert.False(Bdhke.Verify(k, secret + "!", cBytes));
        }, iter: 100);
    }

    [Fact]
    public void Dleq_round_trips_for_signatures_and_proofs_and_tampering_fails()
    {
        var keyset = MintKeyset.Derive(new byte[32], 0, "sat", 0, maxOrder: 8);
        var keys = KeysetKeys.Parse(keyset.PublicKeysHex);
        Gen.Select(Gen.Int[0, 7], Gen.Int[1, 3]).Sample(t =>
        {
            var amount = 1UL << t.Item1;
            var outputs = BlindedOutputs.Create(keyset.Id, Enumerable.Repeat(amount, t.Item2));
            var signatures = outputs.Select(o => keyset.Sign(o.Amount, Secp256k1.ParsePoint(o.Message.B))).ToList();
            var proofs = BlindedOutputs.Unblind(outputs, signatures, id => id == keyset.Id ? keys : null);
            Assert.All(proofs, p =>
            {
                Assert.True(keyset.Verify(p));
                Assert.True(BlindedOutputs.VerifyProofDleq(p, keys));
                Assert.False(BlindedOutputs.VerifyProofDleq(p with { Amount = p.Amount == 1 ? 2UL : 1UL }, keys));
            });
            var forged = signatures.Select(s => s with { Dleq = s.Dleq! with { S = s.Dleq.E } }).ToList();
            var ex = Assert.Throws<MintApi.CashuException>(() => BlindedOutputs.Unblind(outputs, forged, _ => keys));
            Assert.Contains("DLEQ", ex.Message, StringComparison.Ordinal);
        }, iter: 30);
    }
}
