using System.ClientModel;
using System.Diagnostics.Metrics;
using System.Text.RegularExpressions;
using Coinop.Market.Tests.Payments;
using Coinop.Market.Tests.TestProviders;
using OpenAI;
using OpenAI.Chat;
using Microsoft.Extensions.DependencyInjection;

namespace Coinop.Market.Tests.Hosting;

[Collection(ExactMetricsCollection.Name)]
public class MetricsTests
{
    [Fact]
    public async Task Prometheus_scrapes_the_markets_own_instruments_at_metrics()
    {
        var text = await MetricsAfterOneChatAsync();

        // Counters of the inference feature, in the Prometheus text format, with the request just served counted.
        var requests = text.Split('\n').FirstOrDefault(l => l.StartsWith("coinop_market_requests", StringComparison.Ordinal) && !l.StartsWith('#'));
        Assert.True(requests is not null, "no coinop_market_requests series in:\n" + text[..Math.Min(text.Length, 3000)]);
        Assert.Contains("# TYPE", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_whole_answer_is_timed_to_its_first_byte_once()
    {
        // The whole answer's one flush is its first byte: it was recorded there and again after it (two samples for
        // one request, and the job's start moved to the second).
        var text = await MetricsAfterOneChatAsync();
        var count = text.Split('\n').SingleOrDefault(l => l.StartsWith("coinop_market_time_to_first_byte_milliseconds_count", StringComparison.Ordinal));
        Assert.True(count is not null, "no time to first byte in:\n" + text[..Math.Min(text.Length, 3000)]);
        Assert.EndsWith(" 1", count, StringComparison.Ordinal);
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

    [Fact]
    public async Task Every_meter_the_market_creates_is_exported_at_metrics_with_dotted_names()
    {
        var ct = TestContext.Current.CancellationToken;
        List<ServiceDescriptor> registered = [];
        await using var market = await TestMarket.StartAsync(services: s => registered = [.. s]);
        var services = market.App.Services;
        var factory = services.GetRequiredService<IMeterFactory>();

        // The market's own meters (ASP.NET Core's and the runtime's are exported as well, under their own names).
        // Every feature's metrics type, resolved so its meter exists before its first use.
        foreach (var d in registered.Where(d => d.ServiceType.Namespace?.StartsWith("Coinop.", StringComparison.Ordinal) == true
                                                && d.ServiceType.Name.EndsWith("Metrics", StringComparison.Ordinal)))
        {
            services.GetRequiredService(d.ServiceType);
        }

        List<Instrument> instruments = [];
        using (var listener = new MeterListener())
        {
            listener.InstrumentPublished = (instrument, _) =>
            {
                if (ReferenceEquals(instrument.Meter.Scope, factory) && instrument.Meter.Name.StartsWith("Coinop.", StringComparison.Ordinal))
                {
                    lock (instruments)
                    {
                        instruments.Add(instrument);
                    }
                }
            };
            listener.Start(); // publishes the instruments that already exist
        }

        var meters = instruments.Select(i => i.Meter.Name).Distinct().Order().ToList();
        Assert.Superset(new HashSet<string> { "Coinop.Market", "Coinop.Mint", "Coinop.Payments", "Coinop.Market.Workloads", "Coinop.Market.Cluster" }, meters.ToHashSet());
        foreach (var instrument in instruments)
        {
            Assert.Matches(new Regex("^coinop(\\.[a-z0-9_]+)+$"), instrument.Name);
        }

        // One measurement of zero on one instrument of each meter (observable ones report by themselves), so each meter has a
        // series to export; a meter missing from the OpenTelemetry registration has none.
        foreach (var first in instruments.GroupBy(i => i.Meter.Name).Select(g => g.First()))
        {
            switch (first)
            {
                case Counter<long> c: c.Add(0); break;
                case UpDownCounter<long> u: u.Add(0); break;
                case Histogram<double> h: h.Record(0); break;
                case Counter<double> c: c.Add(0); break;
            }
        }

        var text = await market.Http.GetStringAsync(market.Url + "/metrics", ct);
        foreach (var meter in meters)
        {
            Assert.True(text.Contains($"otel_scope_name=\"{meter}\"", StringComparison.Ordinal), $"meter {meter} is not exported at /metrics:\n" + text[..Math.Min(text.Length, 3000)]);
        }
    }

    /// <summary>What <c>/metrics</c> shows after one chat completion, asked with the OpenAI SDK, was answered.</summary>
    private static async Task<string> MetricsAfterOneChatAsync()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        await using var provider = await market.ProviderAsync("llama3", ct, script: Scripts.Answer("hello"));
        var chat = new ChatClient("llama3", new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(market.Url + "/v1") });
        await chat.CompleteChatAsync([new UserChatMessage("hi")], cancellationToken: ct);

        using var http = new HttpClient();
        var text = await http.GetStringAsync(market.Url + "/metrics", ct);
        return text;
    }
}
