using System.Text;
using Coinop.Ecash.PaymentRequests;
using Coinop.Ecash.Tokens;
using Coinop.TestKit;
using CsCheck;

namespace Coinop.Ecash.Tests.Properties;

/// <summary>
/// The token and payment-request decoders take a consumer's bytes: whatever they are fed, the only exception that
/// may leave them is <see cref="FormatException"/> (which the market turns into a 400). Fed with random JSON and
/// CBOR shaped like tokens and requests (the fields' names, nulls, huge numbers, wrong types) and with valid tokens
/// and requests mutated byte by byte or node by node.
/// </summary>
public class DecoderFuzzProperties
{
    private const string Hex64 = HostileInput.Hex64;
    private const string Hex66 = HostileInput.Hex66;

    private static string ValidV3Json() =>
        $$$"""{"token":[{"mint":"http://127.0.0.1/mint","proofs":[{"amount":2,"id":"009a1f293253e41e","secret":"s1","C":"{{{Hex66}}}","dleq":{"e":"{{{Hex64}}}","s":"{{{Hex64}}}"}},{"amount":8,"id":"009a1f293253e41e","secret":"s2","C":"{{{Hex66}}}"}]}],"unit":"sat","memo":"m"}""";

    private static readonly byte[] ValidV4Cbor = Unbase64(TokenCodec.EncodeV4(TokenCodec.Decode("cashuA" + Base64Url.Encode(Encoding.UTF8.GetBytes(ValidV3Json()))))[6..]);

    private static readonly byte[] ValidRequestCbor = Unbase64(new PaymentRequest
    {
        Id = "b7a90176",
        Amount = 10,
        Unit = "sat",
        SingleUse = true,
        Mints = ["http://127.0.0.1/mint"],
        Description = "pay",
        Transports = [new PaymentTransport("post", "http://127.0.0.1/pay", [["n", "17"]])],
        Nut10 = new Nut10Option("P2PK", Hex66, [["locktime", "1"]]),
    }.Encode()[PaymentRequest.Prefix.Length..]);

    private static readonly Gen<byte[]> Mutated = Gen.OneOf(HostileInput.Mutations(ValidV4Cbor), HostileInput.Mutations(ValidRequestCbor));

    private static byte[] Unbase64(string text) => Base64Url.TryDecode(text, out var bytes) ? bytes : throw new InvalidOperationException(text);

    // --- the decoders ---

    private static void OnlyFormatErrors(string text)
    {
        foreach (var decode in new Action<string>[] { s => TokenCodec.Decode(s), s => PaymentRequest.Decode(s) })
        {
            try
            {
                decode(text);
            }
            catch (FormatException)
            {
            }
        }

        Assert.True(TokenCodec.TryDecode(text, out var token, out var error) ? token is not null : error.Length > 0);
    }

    private static void OnlyFormatErrors(byte[] payload)
    {
        var encoded = Base64Url.Encode(payload);
        OnlyFormatErrors("cashuA" + encoded);
        OnlyFormatErrors("cashuB" + encoded);
        OnlyFormatErrors(PaymentRequest.Prefix + encoded);
        try
        {
            TokenCodec.DecodeBinary([.. "crawB"u8, .. payload]);
        }
        catch (FormatException)
        {
        }
    }

    [Fact]
    public void The_null_entry_token_of_the_issue_is_a_format_error()
    {
        var text = "cashuA" + Base64Url.Encode("""{"token":[null]}"""u8);
        Assert.Throws<FormatException>(() => TokenCodec.Decode(text));
        Assert.Throws<FormatException>(() => PaymentRequest.Decode(null!));
    }

    [Fact]
    public void Random_json_shaped_like_a_token_is_only_ever_a_format_error()
    {
        HostileInput.Json.Sample(node => OnlyFormatErrors(Encoding.UTF8.GetBytes(node?.ToJsonString() ?? "null")), iter: 3000);
    }

    [Fact]
    public void A_valid_V3_token_with_any_node_replaced_is_only_ever_a_format_error()
    {
        Gen.Select(Gen.Int[0, 1000], HostileInput.Json).Sample(t =>
        {
            var json = HostileInput.ReplaceOneNode(ValidV3Json(), t.Item1, t.Item2);
            OnlyFormatErrors("cashuA" + Base64Url.Encode(Encoding.UTF8.GetBytes(json)));
        }, iter: 3000);
    }

    [Fact]
    public void Random_cbor_shaped_like_a_token_or_request_is_only_ever_a_format_error()
    {
        HostileInput.Cbor.Sample(OnlyFormatErrors, iter: 3000);
    }

    [Fact]
    public void Tokens_the_market_tests_send_are_only_ever_format_errors()
    {
        var v3 = "cashuA" + Base64Url.Encode(Encoding.UTF8.GetBytes(ValidV3Json()));
        HostileInput.Tokens(v3, "cashuB" + Base64Url.Encode(ValidV4Cbor)).Sample(OnlyFormatErrors, iter: 3000);
    }

    [Fact]
    public void Valid_tokens_and_requests_mutated_byte_by_byte_are_only_ever_format_errors()
    {
        Mutated.Sample(OnlyFormatErrors, iter: 5000);
        // Mutations of the text itself (the prefix, the base64 alphabet, whitespace).
        Gen.OneOf(HostileInput.Mutations("cashuB" + Base64Url.Encode(ValidV4Cbor)), HostileInput.Mutations(PaymentRequest.Prefix + Base64Url.Encode(ValidRequestCbor)))
            .Sample(OnlyFormatErrors, iter: 3000);
    }

    [Fact]
    public void A_decoded_token_holds_only_well_formed_proofs()
    {
        // Whatever passes the decoder is safe to hand to the mint: no null fields, hex where hex is due.
        Gen.Select(Gen.Int[0, 1000], HostileInput.Json).Sample(t =>
        {
            var json = HostileInput.ReplaceOneNode(ValidV3Json(), t.Item1, t.Item2);
            if (!TokenCodec.TryDecode("cashuA" + Base64Url.Encode(Encoding.UTF8.GetBytes(json)), out var token, out _))
            {
                return;
            }

            Assert.NotNull(token!.Mint);
            Assert.NotNull(token.Unit);
            Assert.All(token.Proofs, p =>
            {
                Assert.NotNull(p);
                Assert.False(string.IsNullOrEmpty(p.Secret));
                Assert.True(Crypto.Hex.IsHex(p.C, 66));
                Assert.True(Crypto.Hex.TryDecode(p.Id, out _));
                if (p.Dleq is { } d)
                {
                    Assert.True(Crypto.Hex.IsHex(d.E, 64) && Crypto.Hex.IsHex(d.S, 64), $"dleq {d}");
                    Assert.True(d.R is null || Crypto.Hex.IsHex(d.R, 64), $"dleq r {d.R}");
                }
            });
        }, iter: 3000);
    }
}
