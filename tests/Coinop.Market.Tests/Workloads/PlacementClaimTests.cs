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
    private static Task<MarketUnderTest> MarketAsync(Action<Coinop.Market.Hosting.MarketOptions>? configure = null) =>
        MarketUnderTest.StartAsync(o =>
        {
            o.WorkloadStopAfter = TimeSpan.FromMinutes(10);
            configure?.Invoke(o);
        }, cancellationToken: Ct);

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
        // Unproven providers trusted with anything here, so the operator's bound is what is tested.
        await using var market = await MarketAsync(o => (o.UnprovenProviderCpu, o.UnprovenProviderMemoryMb) = (1_000_000, 1L << 40));
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

    [Fact]
    public async Task A_new_provider_claiming_a_million_cpus_is_given_only_the_unproven_allowance()
    {
        await using var market = await MarketAsync(); // --unproven-provider-cpu 4 by default
        await using var liar = await WorkloadProviderAsync(market, "liar", 1e6, 1L << 40);
        await using var honest = await WorkloadProviderAsync(market, "honest", 8, 16384);

        // Pinned to the liar: five cores is more than a provider with no delivered work is believed to have.
        var (status, body) = await SubmitAsync(market, liar.ProviderId, cpu: 5);
        Assert.True(status == HttpStatusCode.ServiceUnavailable, body?.ToJsonString());
        Assert.Contains("has no room", (string)body!["error"]!["message"]!, StringComparison.Ordinal);

        // One-core workloads fill both providers' allowances (four each, whatever they claim), then nothing more is placed.
        var placed = new List<string>();
        for (var i = 0; i < 8; i++)
        {
            (status, body) = await SubmitAsync(market);
            Assert.True(status == HttpStatusCode.Created, body?.ToJsonString());
            placed.Add((string)body!["provider"]!);
        }

        Assert.Equal(4, placed.Count(p => p == liar.ProviderId));
        Assert.Equal(4, placed.Count(p => p == honest.ProviderId));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await SubmitAsync(market)).Status);
    }

    [Fact]
    public async Task A_providers_allowance_grows_with_copies_it_kept_live_not_with_its_claim()
    {
        await using var market = await MarketAsync(o => (o.UnprovenProviderCpu, o.CapacityProvingTime) = (2, TimeSpan.FromSeconds(1)));
        await using var liar = await WorkloadProviderAsync(market, "liar", 1e6, 1L << 40);

        // Two cores of copies while unproven; a third is refused.
        var copies = new List<CopyRef>();
        for (var i = 0; i < 2; i++)
        {
            var start = liar.WaitForAsync<WorkloadStart>(_ => true, afterNow: true);
            var (status, body) = await SubmitAsync(market, liar.ProviderId);
            Assert.True(status == HttpStatusCode.Created, body?.ToJsonString());
            var started = await start.WaitAsync(TimeSpan.FromSeconds(60), Ct);
            copies.Add(new CopyRef(started.WorkloadId, started.Epoch));
        }

        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await SubmitAsync(market, liar.ProviderId)).Status);

        // It runs them (heartbeats them as live) past the proving time: it has delivered two cores, so it is believed to
        // have four (twice that), and no more, however many it claims.
        var seq = 0L;
        (HttpStatusCode Status, JsonNode? Body) grown = default;
        await Eventually.WaitAsync(async () =>
        {
            var next = ++seq;
            var ack = liar.WaitForAsync<WorkloadAck>(a => a.Seq == next);
            await liar.SendAsync(new WorkloadHeartbeat(next, "incarnation-liar", copies, []), Ct);
            await ack.WaitAsync(TimeSpan.FromSeconds(60), Ct);
            grown = await SubmitAsync(market, liar.ProviderId, cpu: 2);
            return grown.Status;
        }, status => status == HttpStatusCode.Created, "the allowance grown by delivered work", cancellationToken: Ct);

        var (refused, refusal) = await SubmitAsync(market, liar.ProviderId);
        Assert.True(refused == HttpStatusCode.ServiceUnavailable, refusal?.ToJsonString());
    }
}
