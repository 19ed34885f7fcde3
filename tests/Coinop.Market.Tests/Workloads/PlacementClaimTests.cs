using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Coinop.Core.Protocol;
using Coinop.Market.Tests.TestProviders;
using Coinop.TestKit;

namespace Coinop.Market.Tests.Workloads;

/// <summary>
/// Placement must not believe what a provider says about itself (issue 9, item 8): providers that speak the real
/// protocol over real WebSockets claim capacity and names; consumers submit through the real API.
/// </summary>
public class PlacementClaimTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A market whose copies are not replaced during a test (the test providers run nothing and never heartbeat copies).</summary>
    private static Task<MarketUnderTest> MarketAsync() =>
        MarketUnderTest.StartAsync(o => o.WorkloadStopAfter = TimeSpan.FromMinutes(10), cancellationToken: Ct);

    /// <summary>A provider that offers workloads with the capacity it claims, applied by the market before this returns.</summary>
    internal static async Task<TestProvider> WorkloadProviderAsync(MarketUnderTest market, string name, double cpu, long memoryMb)
    {
        var provider = await TestProvider.ConnectAsync(market.Url, name, cancellationToken: Ct);
        Assert.NotNull(provider.AuthOk);
        await provider.SendAsync(new CapabilitiesMessage([], 8, "test/1", new WorkloadCapacity("bubblewrap", cpu, memoryMb, 20, 5,
            Convert.ToBase64String(new byte[32]), Convert.ToBase64String(new byte[64]), "incarnation-" + name)), Ct);
        await provider.HeartbeatAsync(Ct); // acknowledged after the capabilities were applied
        return provider;
    }

    private static async Task<(HttpStatusCode Status, JsonNode? Body)> SubmitAsync(MarketUnderTest market, string? provider = null, double cpu = 1)
    {
        using var response = await market.Http.PostAsJsonAsync("/api/workloads",
            new { command = "sleep", args = new[] { "600" }, cpu, memory_mb = 256, provider }, Ct);
        return (response.StatusCode, JsonNode.Parse(await response.Content.ReadAsStringAsync(Ct)));
    }

    [Fact]
    public async Task A_provider_advertising_unbounded_cpu_does_not_win_every_placement()
    {
        await using var market = await MarketAsync();
        await using var honestA = await WorkloadProviderAsync(market, "honest-a", 4, 8192);
        await using var honestB = await WorkloadProviderAsync(market, "honest-b", 4, 8192);
        await using var liar = await WorkloadProviderAsync(market, "liar", 1e12, 1L << 50);

        var placed = new List<string>();
        for (var i = 0; i < 6; i++)
        {
            var (status, body) = await SubmitAsync(market);
            Assert.True(status == HttpStatusCode.Created, body?.ToJsonString());
            placed.Add((string)body!["provider"]!);
        }

        // Each provider takes its turn: a claim of a trillion cores buys no more placements than four honest ones.
        Assert.Equal(2, placed.Count(p => p == liar.ProviderId));
        Assert.Equal(2, placed.Count(p => p == honestA.ProviderId));
        Assert.Equal(2, placed.Count(p => p == honestB.ProviderId));
    }

    [Fact]
    public async Task A_capacity_claim_counts_as_at_most_the_operators_bound()
    {
        await using var market = await MarketAsync();
        await using var liar = await WorkloadProviderAsync(market, "liar", 1e12, 1L << 50);

        // 100 cores is more than --max-provider-cpu (64 by default) believes any one provider has.
        var (status, body) = await SubmitAsync(market, cpu: 100);
        Assert.True(status == HttpStatusCode.ServiceUnavailable, body?.ToJsonString());
        Assert.Equal(HttpStatusCode.Created, (await SubmitAsync(market, cpu: 64)).Status);
    }

    [Fact]
    public async Task A_provider_copying_a_display_name_cannot_receive_a_workload_pinned_to_the_other()
    {
        await using var market = await MarketAsync();
        var victim = await WorkloadProviderAsync(market, "alice", 4, 8192);
        await using var copycat = await WorkloadProviderAsync(market, "alice", 64, 65536); // same name, more room
        await using var impostor = await WorkloadProviderAsync(market, victim.ProviderId, 64, 65536); // the victim's id as its name

        // By id: the victim, whoever else claims what.
        var (status, body) = await SubmitAsync(market, victim.ProviderId);
        Assert.True(status == HttpStatusCode.Created, body?.ToJsonString());
        Assert.Equal(victim.ProviderId, (string)body!["provider"]!);

        // By a name two providers carry: refused, not guessed.
        (status, body) = await SubmitAsync(market, "alice");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("pin one by id", (string)body!["error"]!["message"]!, StringComparison.Ordinal);

        // The victim goes offline: its pins wait for it, they never fall to the copycat or the impostor.
        await victim.DisposeAsync();
        await Eventually.WaitAsync(() => Task.FromResult(market.Directory.Find(victim.ProviderId) is null), gone => gone, "the victim offline", cancellationToken: Ct);
        (status, body) = await SubmitAsync(market, victim.ProviderId);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
        Assert.Contains("is not online", (string)body!["error"]!["message"]!, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, (await SubmitAsync(market, "alice")).Status);
    }
}
