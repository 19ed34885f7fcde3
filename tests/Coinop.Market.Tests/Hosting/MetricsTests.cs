using System.ClientModel;
using Coinop.Market.Tests.Payments;
using Coinop.Market.Tests.TestProviders;
using OpenAI;
using OpenAI.Chat;

namespace Coinop.Market.Tests.Hosting;

public class MetricsTests
{
    [Fact]
    public async Task Prometheus_scrapes_the_markets_own_instruments_at_metrics()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        await using var provider = await market.ProviderAsync("llama3", ct, script: Scripts.Answer("hello"));
        var chat = new ChatClient("llama3", new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(market.Url + "/v1") });
        await chat.CompleteChatAsync([new UserChatMessage("hi")], cancellationToken: ct);

        using var http = new HttpClient();
        var text = await http.GetStringAsync(market.Url + "/metrics", ct);

        // Counters of the inference feature, in the Prometheus text format, with the request just served counted.
        var requests = text.Split('\n').FirstOrDefault(l => l.StartsWith("coinop_market_requests", StringComparison.Ordinal) && !l.StartsWith('#'));
        Assert.True(requests is not null, "no coinop_market_requests series in:\n" + text[..Math.Min(text.Length, 3000)]);
        Assert.Contains("# TYPE", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_token_paid_request_is_timed_in_its_hold_and_its_settle()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await PaidMarket.StartAsync();
        await using var provider = await market.Market.ProviderAsync("llama3", ct);
        using var response = await market.ChatAsync(xCashu: await market.TokenAsync(10));
        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);

        var text = await market.Http.GetStringAsync(market.Url + "/metrics", ct);

        foreach (var step in new[] { "hold", "settle" })
        {
            var count = text.Split('\n').SingleOrDefault(l =>
                l.StartsWith($"coinop_payments_{step}_duration_milliseconds_count", StringComparison.Ordinal) && l.Contains("kind=\"token\"", StringComparison.Ordinal));
            Assert.True(count is not null, $"no {step} duration for tokens in:\n" + text[..Math.Min(text.Length, 3000)]);
            Assert.EndsWith(" 1", count, StringComparison.Ordinal);
            Assert.Contains($"coinop_payments_{step}_duration_milliseconds_bucket{{otel_scope_name=\"Coinop.Payments\",kind=\"token\",le=\"0.25\"}}", text, StringComparison.Ordinal);
        }
    }
}
