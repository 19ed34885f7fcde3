using System.Text.Json.Nodes;
using Coinop.Core.Workloads;
using Coinop.Workloads.Tests.Infrastructure;

namespace Coinop.Workloads.Tests;

/// <summary>
/// Every copy's usage reaches the consumer, up to the moment it stopped: the provider signs and sends the copy's last
/// (short) window whatever stopped it — a cancel, the paid time running out, its own exit, a restart after a failure, an
/// owner drain — all well within the first 10 s window, so without the last window there would be no record at all.
/// </summary>
public sealed class UsageTests
{
    [Fact]
    public async Task Every_copy_sends_its_last_usage_window_whatever_stopped_it()
    {
        await using var cluster = await WorkloadCluster.StartAsync(providers: 2);
        var cancelled = TestWorkload.Forever();
        var expired = TestWorkload.Forever();
        var exited = new TestWorkload("echo run; sleep 1; exit 0");
        var restarted = new TestWorkload("echo run $COINOP_EPOCH; sleep 1; exit 3");
        using var cancelledWatch = cancelled.Watch();
        try
        {
            var cancelledId = (string)(await cluster.SubmitAsync(cancelled.Request()))["id"]!;
            var expiredId = (string)(await cluster.SubmitAsync(expired.Request(new { duration_seconds = 3 })))["id"]!;
            var exitedId = (string)(await cluster.SubmitAsync(exited.Request()))["id"]!;
            var restartedId = (string)(await cluster.SubmitAsync(restarted.Request(new { restart = "on-failure:1" })))["id"]!;

            await cluster.WaitForStateAsync(cancelledId, "live");
            await cancelledWatch.WaitForEpochAsync(1);
            using (var cancel = await cluster.Http.DeleteAsync($"{cluster.Url}/api/workloads/{cancelledId}", TestContext.Current.CancellationToken))
            {
                cancel.EnsureSuccessStatusCode();
            }

            await cluster.WaitForStateAsync(expiredId, "completed");
            await cluster.WaitForStateAsync(exitedId, "completed");
            await cluster.WaitForStateAsync(restartedId, "failed");

            foreach (var (id, epochs) in new[] { (cancelledId, 1), (expiredId, 1), (exitedId, 1), (restartedId, 2) })
            {
                var done = await cluster.WaitForAsync(id, w => Records(w).Select(r => r.Epoch).Distinct().Count() == epochs, $"the last usage window of {epochs} copies");
                foreach (var epoch in Enumerable.Range(1, epochs))
                {
                    var windows = Records(done).Where(r => r.Epoch == epoch).OrderBy(r => r.WindowStart).ToList();
                    Assert.All(windows, r => Assert.Equal(id, r.WorkloadId));
                    Assert.True(windows[^1].WindowEnd > windows[0].WindowStart, $"{id} epoch {epoch}: the windows cover no time");
                    Assert.True(windows.Sum(r => r.WallSeconds) > 0);
                }
            }
        }
        catch (Exception ex) when (ex is not Xunit.Sdk.XunitException)
        {
            throw new InvalidOperationException(ex.Message + "\n" + cluster.Diagnostics(), ex);
        }
    }

    [Fact]
    public async Task A_drained_copy_sends_its_last_usage_window_and_a_copy_cut_off_by_the_rule_is_refused()
    {
        await using var cluster = await WorkloadCluster.StartAsync(providers: 3, proxied: new HashSet<int> { 2 });
        var (a, c) = (cluster.Providers[0], cluster.Providers[2]);
        var drained = TestWorkload.Forever();
        var partitioned = TestWorkload.Forever();
        using var partitionedWatch = partitioned.Watch();
        try
        {
            var drainedId = (string)(await cluster.SubmitAsync(drained.Request(new { provider = a.Name })))["id"]!;
            var partitionedId = (string)(await cluster.SubmitAsync(partitioned.Request(new { provider = c.Name, restart = "on-failure:1" })))["id"]!;
            await cluster.WaitForStateAsync(drainedId, "live", a.Id, epoch: 1);
            await cluster.WaitForStateAsync(partitionedId, "live", c.Id, epoch: 1);
            await partitionedWatch.WaitForEpochAsync(1);

            a.Process.Terminate(); // SIGTERM: an owner drain stops the copy and reports it
            c.Proxy!.Cut(TestKit.CutMode.Blackhole);
            await c.Process.WaitForLineAsync("stopped by the rule", TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);

            var afterDrain = await cluster.WaitForAsync(drainedId, w => Records(w).Any(r => r.Epoch == 1), "the drained copy's last window");
            Assert.All(Records(afterDrain), r => Assert.Equal(drainedId, r.WorkloadId));

            // The cut-off copy's last window waits in its provider's outbox; once the link heals it arrives (before the
            // loss report that follows it) and is refused: that copy lost its lease, the market replaced it.
            var replaced = await cluster.WaitForAsync(partitionedId, w => (long?)w["epoch"] >= 2, "the cut-off copy replaced");
            var beforeHeal = Records(replaced).Where(r => r.Epoch == 1).ToList();
            c.Proxy.Heal();
            await cluster.WaitForMarketLogAsync($"CopyLost {{ Provider = {c.Id}, Epoch = 1, Reason = stopped_by_rule }} ignored");
            Assert.Equal(beforeHeal, Records(await cluster.GetAsync(partitionedId)).Where(r => r.Epoch == 1));
        }
        catch (Exception ex) when (ex is not Xunit.Sdk.XunitException)
        {
            throw new InvalidOperationException(ex.Message + "\n" + cluster.Diagnostics(), ex);
        }
    }

    private static List<UsageRecord> Records(JsonObject workload) =>
        [.. workload["usage"]!.AsArray().Select(u => UsageRecord.Verify(new SignedUsageRecord((string)u!["payload"]!, (string)u["signature"]!, (string)u["public_key"]!))!)];
}
