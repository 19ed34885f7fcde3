using System.Net;
using System.Text.Json;
using Coinop.Ecash;
using Coinop.Ecash.Tokens;

namespace Coinop.Market.Tests.Payments;

/// <summary>Tokens that cannot pay: each is refused with 400 and its Cashu error code, nothing is served, the ledger is untouched.</summary>
public class BadTokenTests
{
    [Fact]
    public async Task Every_bad_token_gets_a_400_with_its_Cashu_error_code()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await PaidMarket.StartAsync();
        await using var provider = await market.Market.ProviderAsync("llama3", ct);
        var good = await market.ProofsAsync(8, [4, 4]);
        string Token(IReadOnlyList<Proof> proofs, string? mint = null, string unit = "sat") =>
            TokenCodec.EncodeV4(new Token(mint ?? market.MintUrl, unit, proofs), shortKeysetIds: false);

        var spent = await market.TokenAsync(4);
        using (var first = await market.ChatAsync(xCashu: spent))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        }

        var battery = new (string Case, string Token, string Code)[]
        {
            ("malformed", "cashuBthis-is-not-cbor", "0"),
            ("not a token at all", "hello", "0"),
            ("forged signature", Token([good[0] with { C = good[1].C }]), "10001"),
            ("forged amount", Token([good[0] with { Amount = 64 }]), "10001"),
            ("already spent", spent, "11001"),
            ("duplicate proofs", Token([good[0], good[0]]), "11007"),
            ("unknown keyset", Token([good[0] with { Id = "01" + new string('a', 64) }]), "12001"),
            ("wrong unit", Token(good, unit: "usd"), "11013"),
            ("mint not accepted", Token(good, mint: "http://127.0.0.1:9/mint"), "12001"),
        };

        foreach (var (name, token, code) in battery)
        {
            using var response = await market.ChatAsync(xCashu: token);
            var body = await response.Content.ReadAsStringAsync(ct);
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{name}: {(int)response.StatusCode} {body}");
            using var json = JsonDocument.Parse(body);
            var error = json.RootElement.GetProperty("error");
            Assert.Equal("invalid_payment", error.GetProperty("type").GetString());
            Assert.True(code == error.GetProperty("code").GetString(), $"{name}: expected code {code}, got {body}");
        }

        Assert.Single(provider.Jobs); // only the first, genuine payment was served
        var s = await market.AssertBalancedAsync();
        Assert.Equal(4_000, s.ReceivedMsat);
        Assert.Equal(8UL, await market.RedeemAsync(Token(good))); // the genuine proofs used in forged tokens were never spent
    }

    [Fact]
    public async Task A_bad_token_as_the_Bearer_key_is_refused_the_same_way()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await PaidMarket.StartAsync();
        await using var provider = await market.Market.ProviderAsync("llama3", ct);
        var proofs = await market.ProofsAsync(3, [1, 2]);

        using var response = await market.ChatAsync(bearer: TokenCodec.EncodeV4(new Token(market.MintUrl, "sat", [proofs[0] with { C = proofs[1].C }])));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
        Assert.Equal("invalid_payment", json.RootElement.GetProperty("error").GetProperty("type").GetString());
        Assert.Equal("10001", json.RootElement.GetProperty("error").GetProperty("code").GetString());
        Assert.Empty(provider.Jobs);

        await market.AssertBalancedAsync();
    }
}
