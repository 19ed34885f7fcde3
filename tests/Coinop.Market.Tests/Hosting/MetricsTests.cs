using System.ClientModel;
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
}
