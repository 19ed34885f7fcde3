using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net;
using System.Text;
using System.Text.Json;
using Coinop.Ecash.PaymentRequests;
using Coinop.Ecash.Tokens;
using Coinop.Market.Payments;
using Coinop.Market.Tests.Inference;
using Coinop.Market.Tests.TestProviders;
using Coinop.Storage;
using Coinop.Storage.Payments;
using Dapper;
using Microsoft.Extensions.DependencyInjection;
using Coinop.TestKit;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using OpenAI;
using OpenAI.Chat;

namespace Coinop.Market.Tests.Payments;

/// <summary>Paying one request with an X-Cashu token (NUT-24): change, streams, 402 payment requests, failures.</summary>
public class TokenPaymentTests
{
    // The test provider's price: 1 msat per input token, 3 msat per output token; its answer uses 5 in + 7 out = 26 msat.
    private const long CostMsat = 26;

    [Theory]
    [MemberData(nameof(PaidMarket.Dialects), MemberType = typeof(PaidMarket))]
    public async Task A_token_pays_and_the_change_comes_back_in_whole_sats_with_the_remainder_as_fee(SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await PaidMarket.StartAsync(dialect);
        await using var provider = await market.Market.ProviderAsync("llama3", ct);

        using var response = await market.ChatAsync(xCashu: await market.TokenAsync(10));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("hello from the test provider", await response.Content.ReadAsStringAsync(ct), StringComparison.Ordinal);
        var change = TokenCodec.Decode(response.Headers.GetValues(PaidInferenceBilling.HeaderName).Single());
        Assert.Equal(market.MintUrl, change.Mint);
        Assert.Equal(9UL, change.Amount); // 10 000 msat held, 26 charged: 9 whole sats back, 974 msat remainder spent
        Assert.Equal(9UL, await market.RedeemAsync(TokenCodec.EncodeV4(change)));
        var s = await market.AssertBalancedAsync();
        Assert.Equal(10_000, s.ReceivedMsat);
        Assert.Equal(9_000, s.RefundedMsat);
        Assert.Equal(1_000, s.SpentMsat);
        Assert.Equal(23, s.ProviderEarnedMsat); // 26 × 0.9, rounded down
        Assert.Equal(977, s.FeeMsat); // the rest of the charge and the sub-sat remainder
        Assert.Equal(0, s.HeldMsat);
    }

    [Fact]
    public async Task The_charge_never_exceeds_the_reservation()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await PaidMarket.StartAsync();
        // The provider sends 100 tokens' worth of text (300 bytes) for a request that allowed 10, and claims 100 000.
        await using var provider = await market.Market.ProviderAsync("llama3", ct, script: Scripts.Answer(new string('x', 300), 5, 100_000));

        using var response = await market.ChatAsync(xCashu: await market.TokenAsync(4), maxTokens: 10);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var s = await market.AssertBalancedAsync();
        var reservation = ReservationMsat(maxTokens: 10);
        Assert.Equal(reservation + (4_000 - reservation) % 1000, s.SpentMsat); // the charge is the reservation, plus the sub-sat remainder
        Assert.Equal((4_000 - reservation) / 1000 * 1000, s.RefundedMsat);
    }

    [Fact]
    public async Task A_stream_ends_with_the_change_as_an_SSE_comment_before_DONE()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await PaidMarket.StartAsync();
        await using var provider = await market.Market.ProviderAsync("llama3", ct, script: Scripts.Answer("one two three"));

        var sse = await Sse.PostAsync(market.Http, "/v1/chat/completions", PaidMarket.ChatBody(stream: true), ct,
            (PaidInferenceBilling.HeaderName, await market.TokenAsync(5)));

        Assert.Equal(HttpStatusCode.OK, sse.Status);
        Assert.Equal("[DONE]", sse.Data[^1]);
        var comment = Assert.Single(sse.Comments);
        Assert.StartsWith("X-Cashu cashuB", comment, StringComparison.Ordinal);
        var lines = sse.Raw.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(": " + comment, lines[^2]); // right before data: [DONE]
        Assert.Equal(4UL, TokenCodec.Decode(comment["X-Cashu ".Length..]).Amount);

        await market.AssertBalancedAsync();
    }

    [Fact]
    public async Task The_OpenAI_SDK_reads_a_paid_stream_that_carries_the_change_comment()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await PaidMarket.StartAsync();
        await using var provider = await market.Market.ProviderAsync("llama3", ct, script: Scripts.Answer("one two three"));
        var options = new OpenAIClientOptions { Endpoint = new Uri(market.Url + "/v1") };
        // No max_tokens: the reservation covers the offer's context window (8192 output tokens × 3 msat).
        options.AddPolicy(new HeaderPolicy(PaidInferenceBilling.HeaderName, await market.TokenAsync(30)), PipelinePosition.PerCall);
        var client = new OpenAIClient(new ApiKeyCredential("unused"), options);

        var text = new StringBuilder();
        await foreach (var update in client.GetChatClient("llama3").CompleteChatStreamingAsync([new UserChatMessage("count")], cancellationToken: ct))
        {
            foreach (var part in update.ContentUpdate)
            {
                text.Append(part.Text);
            }
        }

        Assert.Equal("one two three", text.ToString());
        var s = await market.AssertBalancedAsync();
        Assert.Equal(29_000, s.RefundedMsat);
    }

    [Fact]
    public async Task Over_HTTP2_a_client_that_accepts_trailers_also_gets_the_change_as_a_trailer()
    {
        var ct = TestContext.Current.CancellationToken;
        // HTTP/2 without TLS needs an endpoint that speaks only HTTP/2; providers keep the HTTP/1.1 one (WebSockets).
        var h2Port = Ports.GetFree();
        await using var market = await PaidMarket.StartAsync(
            configure: o => o.Urls = $"http://127.0.0.1:0;http://127.0.0.1:{h2Port}",
            builder: b => b.WebHost.ConfigureKestrel(k => k.ConfigureEndpointDefaults(l =>
            {
                if (l.IPEndPoint?.Port == h2Port)
                {
                    l.Protocols = HttpProtocols.Http2;
                }
            })));
        await using var provider = await market.Market.ProviderAsync("llama3", ct);
        using var h2 = new HttpClient { DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };
        using var request = new HttpRequestMessage(HttpMethod.Post, $"http://127.0.0.1:{h2Port}/v1/chat/completions")
        {
            Content = new StringContent(PaidMarket.ChatBody(stream: true), Encoding.UTF8, "application/json"),
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        request.Headers.Add(PaidInferenceBilling.HeaderName, await market.TokenAsync(3));
        request.Headers.TE.ParseAdd("trailers");

        using var response = await h2.SendAsync(request, ct);
        var raw = await response.Content.ReadAsStringAsync(ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(HttpVersion.Version20, response.Version);
        var trailer = response.TrailingHeaders.GetValues(PaidInferenceBilling.HeaderName).Single();
        Assert.Contains(": X-Cashu " + trailer, raw, StringComparison.Ordinal);
        Assert.Equal(2UL, TokenCodec.Decode(trailer).Amount);

        await market.AssertBalancedAsync();
    }

    [Theory]
    [MemberData(nameof(PaidMarket.Dialects), MemberType = typeof(PaidMarket))]
    public async Task No_payment_gets_a_402_whose_payment_request_pays_the_request(SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await PaidMarket.StartAsync(dialect, PayoutTests.AllowDearProviders);
        await using var provider = await market.Market.ProviderAsync("llama3", ct, inSats: 20_000, outSats: 60_000);

        using var refused = await market.ChatAsync(bearer: "unused");

        Assert.Equal(HttpStatusCode.PaymentRequired, refused.StatusCode);
        using var body = JsonDocument.Parse(await refused.Content.ReadAsStringAsync(ct));
        Assert.Equal("payment_required", body.RootElement.GetProperty("error").GetProperty("code").GetString());
        var request = PaymentRequest.Decode(refused.Headers.GetValues(PaidInferenceBilling.HeaderName).Single());
        Assert.Equal("sat", request.Unit);
        Assert.Contains(market.MintUrl, request.Mints!);
        // 20 msat per input token, 60 per output token: the estimate of this body plus 100 output tokens, in whole sats up.
        Assert.Equal((ulong)Settlement.CeilSat(ReservationMsat(100, 20, 60)), request.Amount);

        using var paid = await market.ChatAsync(xCashu: await market.TokenAsync(request.Amount!.Value));

        Assert.Equal(HttpStatusCode.OK, paid.StatusCode);
        var s = await market.AssertBalancedAsync();
        Assert.Equal((5 * 20 + 7 * 60) * 9 / 10, s.ProviderEarnedMsat);
    }

    [Fact]
    public async Task A_token_worth_less_than_the_reservation_gets_a_402_and_stays_unspent()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await PaidMarket.StartAsync(configure: PayoutTests.AllowDearProviders);
        await using var provider = await market.Market.ProviderAsync("llama3", ct, inSats: 20_000, outSats: 60_000);
        var token = await market.TokenAsync(1);

        using var response = await market.ChatAsync(xCashu: token);

        Assert.Equal(HttpStatusCode.PaymentRequired, response.StatusCode);
        Assert.StartsWith("creqA", response.Headers.GetValues(PaidInferenceBilling.HeaderName).Single(), StringComparison.Ordinal);
        Assert.Empty(provider.Jobs);
        Assert.Equal(1UL, await market.RedeemAsync(token));

        await market.AssertBalancedAsync();
    }

    [Theory]
    [MemberData(nameof(PaidMarket.Dialects), MemberType = typeof(PaidMarket))]
    public async Task A_request_that_fails_before_any_output_costs_nothing(SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await PaidMarket.StartAsync(dialect);
        await using var provider = await market.Market.ProviderAsync("llama3", ct, script: Scripts.Fail());

        using var response = await market.ChatAsync(xCashu: await market.TokenAsync(7));

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        var change = response.Headers.GetValues(PaidInferenceBilling.HeaderName).Single();
        Assert.Equal(7UL, await market.RedeemAsync(change));
        var s = await market.AssertBalancedAsync();
        Assert.Equal(7_000, s.ReceivedMsat);
        Assert.Equal(7_000, s.RefundedMsat);
        Assert.Equal(0, s.SpentMsat);
    }

    [Theory]
    [MemberData(nameof(PaidMarket.Dialects), MemberType = typeof(PaidMarket))]
    public async Task Of_concurrent_requests_paying_with_one_token_exactly_one_is_served(SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await PaidMarket.StartAsync(dialect);
        await using var provider = await market.Market.ProviderAsync("llama3", ct);
        var token = await market.TokenAsync(8);

        var responses = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => market.ChatAsync(xCashu: token)));

        Assert.Single(responses, r => r.StatusCode == HttpStatusCode.OK);
        foreach (var refused in responses.Where(r => r.StatusCode != HttpStatusCode.OK))
        {
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
            using var body = JsonDocument.Parse(await refused.Content.ReadAsStringAsync(ct));
            Assert.Contains(body.RootElement.GetProperty("error").GetProperty("code").GetString(), new[] { "11001", "11002" });
        }

        Assert.Single(provider.Jobs);
        var s = await market.AssertBalancedAsync();
        Assert.Equal(8_000, s.ReceivedMsat);
        foreach (var r in responses)
        {
            r.Dispose();
        }
    }

    [Fact]
    public async Task Change_comes_from_the_ready_stock_and_the_stock_refills()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await PaidMarket.StartAsync(builder: b => b.Services.Configure<PaymentsOptions>(o =>
        {
            o.ChangeStockPerAmount = 2;
            o.ChangeStockMaxSat = 4;
        }));
        await using var provider = await market.Market.ProviderAsync("llama3", ct);
        var stock = market.Services.GetRequiredService<IChangeStockStore>();
        async Task<HashSet<string>> SecretsAsync() =>
            [.. await market.Database.ReadAsync(c => c.QueryAsync<string>("SELECT secret FROM change_stock"), ct)];
        await Eventually.WaitAsync(async () => (await SecretsAsync()).Count, n => n == 6, "the stock filled (1, 2 and 4 sat, two each)", cancellationToken: ct);
        var stocked = await SecretsAsync();

        using var response = await market.ChatAsync(xCashu: await market.TokenAsync(10));

        // 9 sat of change: 1 sat from stock, 8 sat (above the largest stocked denomination) issued on the spot.
        var change = TokenCodec.Decode(response.Headers.GetValues(PaidInferenceBilling.HeaderName).Single());
        Assert.Equal([1UL, 8UL], change.Proofs.Select(p => p.Amount).Order());
        Assert.Contains(change.Proofs.Single(p => p.Amount == 1).Secret, stocked);
        Assert.DoesNotContain(change.Proofs.Single(p => p.Amount == 8).Secret, stocked);
        Assert.Equal(9UL, await market.RedeemAsync(TokenCodec.EncodeV4(change)));
        await Eventually.WaitAsync(async () => (await stock.CountsAsync(ct)).GetValueOrDefault(1), n => n == 2, "the stock refilled", cancellationToken: ct);
        await market.AssertBalancedAsync();
    }

    /// <summary>What the market reserves for <see cref="PaidMarket.ChatBody"/>: its input estimate (a token per 3 bytes) and max_tokens.</summary>
    internal static long ReservationMsat(int maxTokens, long inMsat = 1, long outMsat = 3)
    {
        var inputEstimate = (Encoding.UTF8.GetByteCount(PaidMarket.ChatBody(maxTokens: maxTokens)) + 2) / 3;
        return inputEstimate * inMsat + maxTokens * outMsat;
    }

    private sealed class HeaderPolicy(string name, string value) : PipelinePolicy
    {
        public override void Process(PipelineMessage message, IReadOnlyList<PipelinePolicy> pipeline, int currentIndex)
        {
            message.Request.Headers.Set(name, value);
            ProcessNext(message, pipeline, currentIndex);
        }

        public override async ValueTask ProcessAsync(PipelineMessage message, IReadOnlyList<PipelinePolicy> pipeline, int currentIndex)
        {
            message.Request.Headers.Set(name, value);
            await ProcessNextAsync(message, pipeline, currentIndex);
        }
    }
}
