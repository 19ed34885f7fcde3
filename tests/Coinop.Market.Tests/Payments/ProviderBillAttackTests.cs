using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Coinop.Core.Protocol;
using Coinop.Ecash.PaymentRequests;
using Coinop.Ecash.Tokens;
using Coinop.Market.Payments;
using Coinop.Market.Tests.TestProviders;

namespace Coinop.Market.Tests.Payments;

/// <summary>
/// Issue 9 item 7: a provider must not set what consumers pay. Each test carries out the attack against a real paid market
/// with providers speaking the real protocol: claims of huge context windows and prices, usage claimed beyond what was
/// relayed, requests that multiply output, and retries on dearer providers.
/// </summary>
public class ProviderBillAttackTests
{
    private const string NoLimit = """{"model":"llama3","messages":[{"role":"user","content":"hi"}]}""";

    [Fact]
    public async Task A_second_provider_with_a_billion_token_window_and_a_huge_price_does_not_raise_what_consumers_pay()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await PaidMarket.StartAsync();
        await using var honest = await market.Market.ProviderAsync("llama3", ct, name: "honest"); // 1000:3000 sat/Mtok, 8192-token window

        // Measured before: one honest provider, a request without max_tokens costs at most 25 sat.
        Assert.InRange(await QuoteSatAsync(market, NoLimit), 1UL, 25UL);

        await using var attacker = await TestProvider.ConnectAsync(market.Url, "attacker", cancellationToken: ct);
        await attacker.OfferAsync(ct, 8, new ModelOffer("llama3", "vllm", 1_000_000_000, 3_000_000_000, 1_000_000_000, 8));

        for (var i = 0; i < 8; i++)
        {
            Assert.InRange(await QuoteSatAsync(market, NoLimit), 1UL, 25UL);
        }

        for (var i = 0; i < 4; i++)
        {
            using var paid = await PostAsync(market, NoLimit, xCashu: await market.TokenAsync(25));
            Assert.Equal(HttpStatusCode.OK, paid.StatusCode);
        }

        Assert.Empty(attacker.Jobs);
        Assert.Equal(4, honest.Jobs.Count);
        var s = await market.AssertBalancedAsync();
        Assert.True(s.SpentMsat <= 4 * 1000, $"spent {s.SpentMsat} msat"); // 26 msat each, plus the sub-sat remainder of the change
    }

    [Fact]
    public async Task A_huge_window_at_an_ordinary_price_changes_nothing_for_consumers_routed_elsewhere_and_is_bounded_for_its_own()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await PaidMarket.StartAsync();
        await using var honest = await market.Market.ProviderAsync("llama3", ct, name: "honest");
        await using var wide = await TestProvider.ConnectAsync(market.Url, "wide", cancellationToken: ct);
        await wide.OfferAsync(ct, 8, new ModelOffer("llama3", "vllm", 1_000_000, 3_000_000, 1_000_000_000, 8));

        // A 25-sat token is routed to an offer it covers: every request is served, none by the wide offer.
        for (var i = 0; i < 6; i++)
        {
            using var paid = await PostAsync(market, NoLimit, xCashu: await market.TokenAsync(25));
            Assert.Equal(HttpStatusCode.OK, paid.StatusCode);
        }

        Assert.Empty(wide.Jobs);

        // Unpaid requests may be quoted for either; the wide one's window counts as the operator's --max-context (131,072).
        for (var i = 0; i < 6; i++)
        {
            Assert.InRange(await QuoteSatAsync(market, NoLimit), 1UL, (131_072UL * 3 + 1000) / 1000);
        }

        await market.AssertBalancedAsync();
    }

    [Fact]
    public async Task The_operators_max_price_and_max_context_bound_every_offer()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await PaidMarket.StartAsync(configure: o =>
        {
            o.MaxPrice = "2000:6000";
            o.MaxContext = 1000;
        });
        await using var dear = await market.Market.ProviderAsync("llama3", ct, name: "dear", inSats: 3000, outSats: 9000);

        using var refused = await PostAsync(market, NoLimit);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        Assert.Empty(dear.Jobs);

        await using var ok = await market.Market.ProviderAsync("llama3", ct, name: "ok"); // 1000:3000, an 8192-token window
        // 1000 output tokens (the operator's window, not the offer's 8192) at 3 msat, plus the input estimate.
        Assert.Equal(4UL, await QuoteSatAsync(market, NoLimit));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Usage_claimed_beyond_what_was_relayed_is_billed_at_the_markets_own_count(bool stream)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await PaidMarket.StartAsync();
        // 11 bytes of text (4 tokens by the market's count) claimed as 50 000 output tokens, in the output and in job_done.
        await using var provider = await market.Market.ProviderAsync("llama3", ct, script: Scripts.Answer("hello there", 5, 50_000));

        var body = PaidMarket.ChatBody(stream, maxTokens: 8000);
        using var response = await PostAsync(market, body, xCashu: await market.TokenAsync(30));
        await response.Content.ReadAsStringAsync(ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var s = await market.AssertBalancedAsync();
        // Billed 5 in (as claimed, within tolerance) and 4 out: 5 + 12 msat, of which the provider gets 90%.
        Assert.Equal((5 + 4 * 3) * 9 / 10, s.ProviderEarnedMsat);
        Assert.Equal(29_000, s.RefundedMsat);
    }

    [Fact]
    public async Task An_honest_claim_within_tolerance_is_billed_as_reported()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await PaidMarket.StartAsync();
        // 300 bytes of text: the market counts 100 tokens; the backend's tokenizer says 140 (within 150% + 8).
        await using var provider = await market.Market.ProviderAsync("llama3", ct, script: Scripts.Answer(new string('x', 300), 5, 140));

        using var response = await PostAsync(market, PaidMarket.ChatBody(maxTokens: 1000), xCashu: await market.TokenAsync(5));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var s = await market.AssertBalancedAsync();
        Assert.Equal((5 + 140 * 3) * 9 / 10, s.ProviderEarnedMsat);
    }

    [Theory]
    [InlineData("""{"model":"llama3","best_of":3,"messages":[{"role":"user","content":"hi"}]}""", "best_of")]
    [InlineData("""{"model":"llama3","n_predict":-1,"messages":[{"role":"user","content":"hi"}]}""", "n_predict")]
    [InlineData("""{"model":"llama3","n":129,"messages":[{"role":"user","content":"hi"}]}""", "'n'")]
    [InlineData("""{"model":"llama3","n":"4","messages":[{"role":"user","content":"hi"}]}""", "'n'")]
    public async Task Output_multipliers_the_market_cannot_count_are_refused_with_400(string body, string named)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await PaidMarket.StartAsync();
        await using var provider = await market.Market.ProviderAsync("llama3", ct);

        using var response = await PostAsync(market, body, xCashu: await market.TokenAsync(100));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        using var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
        Assert.Contains(named, error.RootElement.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Empty(provider.Jobs);
    }

    [Fact]
    public async Task Output_multipliers_are_counted_in_the_reservation()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await PaidMarket.StartAsync();
        await using var provider = await market.Market.ProviderAsync("llama3", ct);

        // 1000 output tokens at 3 msat: 3 sat and the input estimate, once per output asked for.
        Assert.Equal(4UL, await QuoteSatAsync(market, """{"model":"llama3","max_tokens":1000,"messages":[{"role":"user","content":"hi"}]}"""));
        Assert.Equal(13UL, await QuoteSatAsync(market, """{"model":"llama3","max_tokens":1000,"n":4,"messages":[{"role":"user","content":"hi"}]}"""));
        Assert.Equal(10UL, await QuoteSatAsync(market, """{"model":"llama3","max_tokens":1000,"prompt":["a","b","c"]}""", "/v1/completions"));
        Assert.Equal(4UL, await QuoteSatAsync(market, """{"model":"llama3","max_tokens":1000,"prompt":[1,2,3]}""", "/v1/completions"));
        // llama.cpp's n_predict wins over max_tokens there: the larger limit is reserved.
        Assert.Equal(16UL, await QuoteSatAsync(market, """{"model":"llama3","max_tokens":10,"n_predict":5000,"messages":[{"role":"user","content":"hi"}]}"""));
    }

    [Fact]
    public async Task A_retry_on_a_dearer_provider_re_reserves_from_the_balance_and_is_charged_at_that_providers_price()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await PaidMarket.StartAsync();
        await using var cheap = await market.Market.ProviderAsync("llama3", ct, name: "cheap", script: Scripts.Fail());
        // 3000 bytes of answer: 1000 output tokens at 15 msat — more than the cheap offer's reservation covers.
        await using var dear = await market.Market.ProviderAsync("llama3", ct, name: "dear", inSats: 5000, outSats: 15000,
            script: Scripts.Answer(new string('x', 3000), 5, 1000));
        var key = (await market.PostJsonAsync("/v1/balance/create", new { token = await market.TokenAsync(100) })).GetProperty("api_key").GetString()!;

        using var response = await PostAsync(market, PaidMarket.ChatBody(maxTokens: 1000), bearer: key);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Single(cheap.Jobs);
        Assert.Single(dear.Jobs);
        var balance = (await market.GetJsonAsync("/v1/balance/info", key)).GetProperty("balance_msat").GetInt64();
        Assert.Equal(100_000 - (5 * 5 + 1000 * 15), balance);
        var s = await market.AssertBalancedAsync();
        Assert.Equal(0, s.HeldMsat);
    }

    [Fact]
    public async Task A_token_that_covers_only_the_first_providers_offer_is_never_spent_on_a_dearer_retry()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await PaidMarket.StartAsync();
        await using var cheap = await market.Market.ProviderAsync("llama3", ct, name: "cheap", script: Scripts.Fail());
        await using var dear = await market.Market.ProviderAsync("llama3", ct, name: "dear", inSats: 5000, outSats: 15000);

        using var response = await PostAsync(market, PaidMarket.ChatBody(maxTokens: 1000), xCashu: await market.TokenAsync(4));

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Single(cheap.Jobs);
        Assert.Empty(dear.Jobs);
        Assert.Equal(4UL, TokenCodec.Decode(response.Headers.GetValues(PaidInferenceBilling.HeaderName).Single()).Amount);
        var s = await market.AssertBalancedAsync();
        Assert.Equal(0, s.SpentMsat);
    }

    private static async Task<ulong> QuoteSatAsync(PaidMarket market, string body, string path = "/v1/chat/completions")
    {
        using var refused = await PostAsync(market, body, path: path);
        Assert.Equal(HttpStatusCode.PaymentRequired, refused.StatusCode);
        return PaymentRequest.Decode(refused.Headers.GetValues(PaidInferenceBilling.HeaderName).Single()).Amount!.Value;
    }

    private static async Task<HttpResponseMessage> PostAsync(PaidMarket market, string body, string? xCashu = null, string? bearer = null,
        string path = "/v1/chat/completions")
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        if (xCashu is not null)
        {
            request.Headers.Add(PaidInferenceBilling.HeaderName, xCashu);
        }

        if (bearer is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        }

        var response = await market.Http.SendAsync(request, TestContext.Current.CancellationToken);
        await response.Content.LoadIntoBufferAsync(TestContext.Current.CancellationToken);
        return response;
    }
}
