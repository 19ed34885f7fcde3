using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Coinop.Market.Tests.TestProviders;

namespace Coinop.Market.Tests.Workloads;

/// <summary>
/// A consumer's workload input that the market used to accept only for it to fail later (a 500, or a copy no provider
/// can start): each is a real request to a real market on loopback, beside a provider that speaks the real protocol.
/// </summary>
public class WorkloadAttackTests
{
    private const string OwnerKey = "attacker-owner-key-0123456789abcdef";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static Task<MarketUnderTest> MarketAsync() =>
        MarketUnderTest.StartAsync(o => o.WorkloadStopAfter = TimeSpan.FromMinutes(10), cancellationToken: Ct);

    private static async Task<(HttpStatusCode Status, JsonNode? Body)> SendAsync(MarketUnderTest market, HttpMethod method, string path, object? body)
    {
        using var request = new HttpRequestMessage(method, path) { Content = body is null ? null : JsonContent.Create(body) };
        request.Headers.Add("X-Coinop-Owner-Key", OwnerKey);
        using var response = await market.Http.SendAsync(request, Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True((int)response.StatusCode < 500, $"{method} {path} answered {(int)response.StatusCode}: {text}");
        return (response.StatusCode, JsonNode.Parse(text));
    }

    /// <summary>
    /// Top-ups are free on a free market (and nearly so at a provider's zero rate), each up to ten years: about 800 of
    /// them pushed the lease past DateTimeOffset's year 9999, and the machine's addition threw (a 500 from the top-up).
    /// </summary>
    [Fact]
    public async Task Top_ups_that_would_push_the_lease_past_any_date_are_refused_not_a_500()
    {
        await using var market = await MarketAsync();
        await using var provider = await PlacementClaimTests.WorkloadProviderAsync(market, "p", 4, 8192);
        var (status, submitted) = await SendAsync(market, HttpMethod.Post, "/api/workloads", new { command = "sleep", args = new[] { "600" }, duration_seconds = 60 });
        Assert.True(status == HttpStatusCode.Created, submitted?.ToJsonString());
        var id = (string)submitted!["id"]!;

        var refused = false;
        for (var i = 0; i < 1_000 && !refused; i++)
        {
            var (topped, body) = await SendAsync(market, HttpMethod.Post, $"/api/workloads/{id}/topup", new { duration_seconds = 315_360_000 });
            if (topped != HttpStatusCode.OK)
            {
                Assert.Equal(HttpStatusCode.Conflict, topped);
                Assert.Equal("not_extended", (string?)body!["error"]!["code"]);
                refused = true;
            }
        }

        Assert.True(refused, "a thousand ten-year top-ups were all accepted");
        var (shown, view) = await SendAsync(market, HttpMethod.Get, "/api/workloads/" + id, null);
        Assert.Equal(HttpStatusCode.OK, shown);
        Assert.DoesNotContain((string?)view!["state"], new[] { "failed", "cancelled", "completed" });
    }

    /// <summary>
    /// The market took any CPU above zero while every provider refuses a copy of under 0.01 core: the workload was
    /// placed, paid for and then failed to start everywhere. Bad input is a 400 at submit.
    /// </summary>
    [Theory]
    [InlineData(0.005)]
    [InlineData(1e-9)]
    public async Task A_cpu_no_provider_can_start_is_a_400_at_submit(double cpu)
    {
        await using var market = await MarketAsync();
        await using var provider = await PlacementClaimTests.WorkloadProviderAsync(market, "p", 4, 8192);

        var (status, body) = await SendAsync(market, HttpMethod.Post, "/api/workloads", new { command = "sleep", args = new[] { "600" }, cpu, duration_seconds = 60 });

        Assert.True(status == HttpStatusCode.BadRequest, body?.ToJsonString());
        Assert.Equal("invalid_workload", (string?)body!["error"]!["code"]);
    }
}
