using Coinop.TestKit;
using Coinop.Workloads.Tests.Infrastructure;

namespace Coinop.Workloads.Tests;

/// <summary>Losing the primary's provider: a crash, a partition, a drain. The standby takes over and never two copies run.</summary>
public sealed class FailoverTests
{
    [Fact]
    public async Task Kill_9_of_the_primary_promotes_the_standby_and_its_copy_runs()
    {
        await using var cluster = await WorkloadCluster.StartAsync(providers: 2);
        var (a, b) = (cluster.Providers[0], cluster.Providers[1]);
        var workload = TestWorkload.Forever();
        using var watch = workload.Watch();
        try
        {
            var submitted = await cluster.SubmitAsync(workload.Request(new { standbys = 1, provider = a.Name }));
            var id = (string)submitted["id"]!;
            await cluster.WaitForStateAsync(id, "live", a.Id, epoch: 1);
            await watch.WaitForEpochAsync(1);

            a.Process.KillHard();

            var promoted = await cluster.WaitForStateAsync(id, "live", b.Id, epoch: 2);
            await watch.WaitForEpochAsync(2);
            Assert.Equal(0, (int)promoted["attempts"]!); // a promoted standby is what it was paid for, not a restart
            Assert.Empty(promoted["standbys"]!.AsArray());
            Assert.Equal(["provisioning", "live", "suspect", "evicted", "respawning", "live"], States(promoted));
            watch.AssertSingleWriter(minimumSeen: 2);
        }
        catch (Exception ex) when (ex is not Xunit.Sdk.XunitException)
        {
            throw new InvalidOperationException(ex.Message + "\n" + cluster.Diagnostics(), ex);
        }
    }

    [Fact]
    public async Task A_partitioned_primary_stops_its_copy_by_the_rule_the_standby_takes_over_and_the_healed_provider_does_not_resurrect_it()
    {
        await using var cluster = await WorkloadCluster.StartAsync(providers: 2, proxied: new HashSet<int> { 0 });
        var (a, b) = (cluster.Providers[0], cluster.Providers[1]);
        var workload = TestWorkload.Forever();
        using var watch = workload.Watch();
        try
        {
            var id = (string)(await cluster.SubmitAsync(workload.Request(new { standbys = 1, provider = a.Name })))["id"]!;
            await cluster.WaitForStateAsync(id, "live", a.Id, epoch: 1);
            await watch.WaitForEpochAsync(1);
            var cutSession = cluster.Directory.Find(a.Id);

            a.Proxy!.Cut(CutMode.Blackhole);

            // Cut off, A's agent stops the copy by the rule; only after that can the market evict it and promote B.
            await a.Process.WaitForLineAsync("stopped by the rule", TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
            await cluster.WaitForStateAsync(id, "live", b.Id, epoch: 2);
            await watch.WaitForEpochAsync(2);

            a.Proxy.Heal();
            await cluster.WaitForProviderAsync(a, notThis: cutSession);
            // The healed agent reports the copy it stopped (no longer current: ignored) and runs nothing new.
            await cluster.WaitForMarketLogAsync($"CopyLost {{ Provider = {a.Id}, Epoch = 1, Reason = stopped_by_rule }} ignored");
            var after = await cluster.WaitForAsync(id, w => (long?)w["epoch"] == 2 && (string?)w["state"] == "live", "still live at epoch 2 after the heal");
            await watch.WaitForEpochAsync(2);
            Assert.Equal(b.Id, (string?)after["provider"]);
            Assert.DoesNotContain("started in", AfterLast(a.Process.Output, "stopped by the rule"), StringComparison.Ordinal);
            watch.AssertSingleWriter(minimumSeen: 2);
        }
        catch (Exception ex) when (ex is not Xunit.Sdk.XunitException)
        {
            throw new InvalidOperationException(ex.Message + "\n" + cluster.Diagnostics(), ex);
        }
    }

    [Fact]
    public async Task A_draining_primary_hands_its_copy_over_without_waiting_for_eviction()
    {
        await using var cluster = await WorkloadCluster.StartAsync(providers: 2);
        var (a, b) = (cluster.Providers[0], cluster.Providers[1]);
        var workload = TestWorkload.Forever();
        using var watch = workload.Watch();
        try
        {
            var id = (string)(await cluster.SubmitAsync(workload.Request(new { standbys = 1, provider = a.Name })))["id"]!;
            await cluster.WaitForStateAsync(id, "live", a.Id, epoch: 1);
            await watch.WaitForEpochAsync(1);

            a.Process.Terminate(); // SIGTERM: an owner drain

            Assert.Equal(0, await a.Process.WaitForExitAsync(TimeSpan.FromSeconds(60)));
            var promoted = await cluster.WaitForStateAsync(id, "live", b.Id, epoch: 2);
            await watch.WaitForEpochAsync(2);
            // Reported lost by its owner: evicted at once, never merely suspected of silence.
            Assert.DoesNotContain("suspect", States(promoted));
            await cluster.WaitForMarketLogAsync($"Workload {id}: revoking epoch 1 (lost: provider_draining)");
            watch.AssertSingleWriter(minimumSeen: 2);
        }
        catch (Exception ex) when (ex is not Xunit.Sdk.XunitException)
        {
            throw new InvalidOperationException(ex.Message + "\n" + cluster.Diagnostics(), ex);
        }
    }

    [Fact]
    public async Task A_market_restart_evicts_nothing_and_the_copy_keeps_running_under_the_new_market()
    {
        // Room for a slow deploy on a busy machine: providers stop cut-off copies after 10 s; the restarted market waits its failover TTL.
        await using var cluster = await WorkloadCluster.StartAsync(providers: 2, configure: o => (o.WorkloadStopAfter, o.FailoverTtl) = (TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(20)));
        var a = cluster.Providers[0];
        var workload = TestWorkload.Forever();
        using var watch = workload.Watch();
        try
        {
            var id = (string)(await cluster.SubmitAsync(workload.Request(new { standbys = 1, provider = a.Name })))["id"]!;
            await cluster.WaitForStateAsync(id, "live", a.Id, epoch: 1);
            var before = (await watch.WaitForEpochAsync(1)).Single();

            await cluster.RestartMarketAsync();

            await cluster.WaitForProviderAsync(a);
            await cluster.WaitForMarketLogAsync("Supervising 1 open workloads");
            // The reloaded workload is supervised: a cancel reaches the copy that ran all along.
            Assert.Equal(before.Pid, watch.Current.Single().Pid);
            using var cancelled = await cluster.Http.DeleteAsync($"{cluster.Url}/api/workloads/{id}", TestContext.Current.CancellationToken);
            Assert.Equal(System.Net.HttpStatusCode.OK, cancelled.StatusCode);
            await watch.WaitForNoneAsync();
            var done = await cluster.GetAsync(id);
            Assert.Equal((1L, a.Id), ((long)done["epoch"]!, (string?)done["provider"]));
            Assert.DoesNotContain("evicted", States(done));
            Assert.DoesNotContain("stopped by the rule", a.Process.Output, StringComparison.Ordinal);
            watch.AssertSingleWriter();
            Assert.Equal(1, watch.Seen);
        }
        catch (Exception ex) when (ex is not Xunit.Sdk.XunitException)
        {
            throw new InvalidOperationException(ex.Message + "\n" + cluster.Diagnostics(), ex);
        }
    }

    [Fact]
    public async Task A_market_down_for_less_than_stop_after_is_reached_before_the_copies_stop_however_far_the_backoff_escalated()
    {
        // Copies stop 25 s after the last acknowledged heartbeat. With the market down, the agent's reconnect backoff
        // doubles from 1 s: its 5th failure comes at least 12.8 s in and, escalated, would wait at least 12.8 s more, past
        // every deadline. The market is back by then; its copy must not be stopped for an outage that short.
        var stopAfter = TimeSpan.FromSeconds(25);
        await using var cluster = await WorkloadCluster.StartAsync(providers: 1, configure: o => o.WorkloadStopAfter = stopAfter);
        var a = cluster.Providers[0];
        var workload = TestWorkload.Forever();
        using var watch = workload.Watch();
        try
        {
            var id = (string)(await cluster.SubmitAsync(workload.Request()))["id"]!;
            await cluster.WaitForStateAsync(id, "live", a.Id, epoch: 1);
            var copy = (await watch.WaitForEpochAsync(1)).Single();
            var attempts = a.Process.Output.Split('\n').Count(l => l.Contains(ReconnectingIn, StringComparison.Ordinal)) + 6;

            // Every heartbeat the market acknowledged was sent before this: the copy's deadline is at most stopAfter away.
            var downAt = DateTimeOffset.UtcNow;
            await cluster.StopMarketAsync();
            // The session's end, then five failed attempts; then the market is back.
            await a.Process.WaitForLineAsync(l => l.Contains(ReconnectingIn, StringComparison.Ordinal) && --attempts == 0, TimeSpan.FromSeconds(60),
                TestContext.Current.CancellationToken);
            await cluster.StartMarketAgainAsync();

            // A heartbeat acknowledged after the deadline is one the agent sent for a copy it had not stopped.
            var (view, _) = await Eventually.WaitAsync(async () => (View: await cluster.GetAsync(id), Lease: await cluster.CopyLeaseAsync(id)),
                r => (string?)r.View["state"] is not ("live" or "suspect") || r.Lease?.ExpiresAt - cluster.Options.WorkloadTimings.CopyLease.Ttl > downAt + stopAfter,
                "a heartbeat of the copy acknowledged after its deadline", TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);
            Assert.DoesNotContain("stopped by the rule", a.Process.Output, StringComparison.Ordinal);
            Assert.Equal(("live", 1L), ((string?)view["state"], (long)view["epoch"]!));
            Assert.Equal(copy.Pid, watch.Current.Single().Pid);
            watch.AssertSingleWriter();
        }
        catch (Exception ex) when (ex is not Xunit.Sdk.XunitException)
        {
            throw new InvalidOperationException(ex.Message + "\n" + cluster.Diagnostics(), ex);
        }
    }

    internal static string[] States(System.Text.Json.Nodes.JsonObject workload) =>
        [.. workload["history"]!.AsArray().Select(h => (string)h!["state"]!)];

    /// <summary>What the agent prints each time its link ends or an attempt fails, before waiting to try again.</summary>
    private const string ReconnectingIn = "; reconnecting in ";

    private static string AfterLast(string text, string marker)
    {
        var i = text.LastIndexOf(marker, StringComparison.Ordinal);
        return i < 0 ? text : text[i..];
    }
}
