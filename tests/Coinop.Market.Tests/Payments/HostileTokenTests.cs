using System.Net;
using System.Text;
using System.Text.Json;
using Coinop.Ecash.Tokens;
using Coinop.TestKit;
using CsCheck;

namespace Coinop.Market.Tests.Payments;

/// <summary>
/// Every endpoint that takes a token (the <c>X-Cashu</c> header, a token as the Bearer key, balance create/top-up/info)
/// and every mint endpoint that takes a body answers an attacker's bytes with a 4xx and a JSON error in its route's
/// shape, never a 500; and the ledger still balances afterwards. Random and mutated tokens come from
/// <see cref="HostileInput"/>, derived from a genuine token of this market.
/// </summary>
public class HostileTokenTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>The token of issue 9, item 13: <c>{"token":[null]}</c> as a cashuA token.</summary>
    private static readonly string NullEntry = "cashuA" + HostileInput.Base64Url("""{"token":[null]}"""u8.ToArray());

    [Fact]
    public async Task A_cashuA_token_with_a_null_entry_is_a_400_everywhere_a_token_is_taken()
    {
        await using var market = await PaidMarket.StartAsync();
        await using var provider = await market.Market.ProviderAsync("llama3", Ct);
        var key = (await market.PostJsonAsync("/v1/balance/create", new { token = await market.TokenAsync(5) })).GetProperty("api_key").GetString()!;

        await AssertRefusedAsync(await SendAsync(market, HttpMethod.Post, "/v1/balance/create", Body(NullEntry)), "balance create");
        await AssertRefusedAsync(await SendAsync(market, HttpMethod.Post, "/v1/balance/topup", Body(NullEntry), bearer: key), "balance topup");
        await AssertRefusedAsync(await SendAsync(market, HttpMethod.Get, "/v1/balance/info", bearer: NullEntry), "balance info");
        await AssertRefusedAsync(await market.ChatAsync(xCashu: NullEntry), "X-Cashu");
        await AssertRefusedAsync(await market.ChatAsync(bearer: NullEntry), "Bearer");
        Assert.Empty(provider.Jobs);
        await market.AssertBalancedAsync();
    }

    [Fact]
    public async Task Random_and_mutated_tokens_are_refused_with_a_4xx_on_every_endpoint_that_takes_one()
    {
        await using var market = await PaidMarket.StartAsync();
        await using var provider = await market.Market.ProviderAsync("llama3", Ct);
        var key = (await market.PostJsonAsync("/v1/balance/create", new { token = await market.TokenAsync(5) })).GetProperty("api_key").GetString()!;
        var v4 = await market.TokenAsync(6);
        var v3 = TokenCodec.EncodeV3(TokenCodec.Decode(await market.TokenAsync(6)));

        var targets = new (string Name, Func<string, Task<HttpResponseMessage>> Send)[]
        {
            ("X-Cashu", t => market.ChatAsync(xCashu: t)),
            ("Bearer", t => market.ChatAsync(bearer: t)),
            ("balance create", t => SendAsync(market, HttpMethod.Post, "/v1/balance/create", Body(t))),
            ("balance topup", t => SendAsync(market, HttpMethod.Post, "/v1/balance/topup", Body(t), bearer: key)),
            ("balance info", t => SendAsync(market, HttpMethod.Get, "/v1/balance/info", bearer: t)),
        };

        // Sampled on one thread: each sample is a few real requests to the market.
        await SampleAsync(HostileInput.Tokens(v3, v4).Where(t => IsHeaderSafe(t)), async token =>
        {
            foreach (var (name, send) in targets)
            {
                await AssertNoServerErrorAsync(await send(token), name, token);
            }
        }, iter: 60);

        await market.AssertBalancedAsync();
    }

    [Fact]
    public async Task Mint_bodies_built_from_valid_ones_by_an_attacker_are_never_a_server_error()
    {
        await using var market = await PaidMarket.StartAsync();
        var proofs = JsonSerializer.Serialize(await market.ProofsAsync(8, [4, 4]));
        var quote = (await market.PostJsonAsync("/mint/v1/mint/quote/bolt11", new { amount = 4, unit = "sat" })).GetProperty("quote").GetString();
        var outputs = """[{"amount":4,"id":"00ad268c4d1f5826","B_":"02a9acc1e48c25eeeb9289b5031cc57da9fe72f3fe2861d264bdc074209b107ba2"}]""";
        var bodies = new (string Path, string Valid)[]
        {
            ("/mint/v1/swap", $$"""{"inputs":{{proofs}},"outputs":{{outputs}}}"""),
            ("/mint/v1/melt/bolt11", $$"""{"quote":"q","inputs":{{proofs}},"outputs":{{outputs}}}"""),
            ("/mint/v1/melt/quote/bolt11", """{"request":"lnbc10n1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpl2pkx2ctnv5sxxmmwwd5kgetjypeh2ursdae8g6twvus8g6rfwvs8qun0dfjkxaq","unit":"sat","options":{"amountless":{"amount_msat":1000}}}"""),
            ("/mint/v1/mint/quote/bolt11", """{"amount":4,"unit":"sat","description":"d","pubkey":"02a9acc1e48c25eeeb9289b5031cc57da9fe72f3fe2861d264bdc074209b107ba2"}"""),
            ("/mint/v1/mint/bolt11", $$"""{"quote":"{{quote}}","outputs":{{outputs}}}"""),
            ("/mint/v1/checkstate", """{"Ys":["02a9acc1e48c25eeeb9289b5031cc57da9fe72f3fe2861d264bdc074209b107ba2"]}"""),
            ("/mint/v1/restore", $$"""{"outputs":{{outputs}}}"""),
        };

        foreach (var (path, valid) in bodies)
        {
            await SampleAsync(HostileInput.JsonBodies(valid), async body =>
                await AssertNoServerErrorAsync(await SendAsync(market, HttpMethod.Post, path, body), path, body, cashuShape: true), iter: 60);
        }

        await market.AssertBalancedAsync();
    }

    private static async Task SampleAsync<T>(Gen<T> gen, Func<T, Task> check, int iter)
    {
        // CsCheck's async sampler, one at a time: requests to one market, and a failure reproduces from its seed.
        await gen.SampleAsync(async value => await check(value), iter: iter, threads: 1);
    }

    private static bool IsHeaderSafe(string token) => token.All(c => c is >= ' ' and < (char)0x7f) && token.Trim().Length > 0;

    private static string Body(string token) => JsonSerializer.Serialize(new { token });

    private static async Task<HttpResponseMessage> SendAsync(PaidMarket market, HttpMethod method, string path, string? body = null, string? bearer = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null)
        {
            request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        }

        if (bearer is not null)
        {
            request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + bearer);
        }

        var response = await market.Http.SendAsync(request, Ct);
        await response.Content.LoadIntoBufferAsync(Ct);
        return response;
    }

    private static async Task AssertRefusedAsync(HttpResponseMessage response, string name)
    {
        using (response)
        {
            var text = await response.Content.ReadAsStringAsync(Ct);
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{name}: {(int)response.StatusCode} {text}");
            using var json = JsonDocument.Parse(text);
            Assert.Equal("invalid_payment", json.RootElement.GetProperty("error").GetProperty("type").GetString());
        }
    }

    private static async Task AssertNoServerErrorAsync(HttpResponseMessage response, string name, string input, bool cashuShape = false)
    {
        using (response)
        {
            var text = await response.Content.ReadAsStringAsync(Ct);
            var status = (int)response.StatusCode;
            Assert.True(status < 500, $"{name}: {status} {text} for {input}");
            if (status >= 400)
            {
                using var json = JsonDocument.Parse(text);
                Assert.True(cashuShape ? json.RootElement.TryGetProperty("code", out _) : json.RootElement.TryGetProperty("error", out _),
                    $"{name}: {status} without an error body: {text}");
            }
        }
    }
}
