using System.Text;
using Coinop.Workloads.Tests.Infrastructure;

namespace Coinop.Workloads.Tests;

/// <summary>Restart policies, checkpoint restore, cancel and lease expiry on real providers, each checked from the process table.</summary>
public sealed class LifecycleTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Restart_policies_decide_what_follows_a_failing_copy_with_and_without_standbys()
    {
        await using var cluster = await WorkloadCluster.StartAsync(providers: 2);
        try
        {
            // Each copy prints, lives a little (so the process table sees it), then fails.
            var never = new TestWorkload("echo run $COINOP_EPOCH; sleep 0.5; exit 3");
            var twice = new TestWorkload("echo run $COINOP_EPOCH; sleep 0.5; exit 3");
            var standby = new TestWorkload("echo run $COINOP_EPOCH; sleep 0.5; exit 3");
            using var neverWatch = never.Watch();
            using var twiceWatch = twice.Watch();
            using var standbyWatch = standby.Watch();

            var neverId = (string)(await cluster.SubmitAsync(never.Request(new { restart = "never" })))["id"]!;
            var twiceId = (string)(await cluster.SubmitAsync(twice.Request(new { restart = "on-failure:2" })))["id"]!;
            var standbyId = (string)(await cluster.SubmitAsync(standby.Request(new { restart = "on-failure:1", standbys = 1 })))["id"]!;

            var neverDone = await cluster.WaitForStateAsync(neverId, "failed");
            Assert.Equal(0, (int)neverDone["attempts"]!);
            Assert.Equal(1, (long)neverDone["epoch"]!);
            Assert.StartsWith("crashed", (string?)neverDone["reason"], StringComparison.Ordinal);

            // on-failure:2 without standbys: the first copy and two respawns (elsewhere when possible), then failed.
            var twiceDone = await cluster.WaitForStateAsync(twiceId, "failed");
            Assert.Equal(2, (int)twiceDone["attempts"]!);
            Assert.Equal(3, (long)twiceDone["epoch"]!);
            Assert.StartsWith("crashed", (string?)twiceDone["reason"], StringComparison.Ordinal);

            // on-failure:1 with a standby: the restart is the promoted standby; the second failure has no attempt left.
            var standbyDone = await cluster.WaitForStateAsync(standbyId, "failed");
            Assert.Equal(1, (int)standbyDone["attempts"]!);
            Assert.Equal(2, (long)standbyDone["epoch"]!);
            var providers = standbyDone["history"]!.AsArray().Select(h => (string?)h!["provider"]).Where(p => p is not null).Distinct().ToList();
            Assert.Equal(2, providers.Count);

            neverWatch.AssertSingleWriter(minimumSeen: 1);
            twiceWatch.AssertSingleWriter(minimumSeen: 3);
            standbyWatch.AssertSingleWriter(minimumSeen: 2);
            Assert.Equal(1, neverWatch.Seen);
        }
        catch (Exception ex) when (ex is not Xunit.Sdk.XunitException)
        {
            throw new InvalidOperationException(ex.Message + "\n" + cluster.Diagnostics(), ex);
        }
    }

    [Fact]
    public async Task A_respawn_restores_the_state_the_previous_copy_checkpointed()
    {
        await using var cluster = await WorkloadCluster.StartAsync(providers: 2);
        var (a, b) = (cluster.Providers[0], cluster.Providers[1]);
        // Counts its incarnations in the state directory (written atomically, as checkpoints want it).
        var workload = new TestWorkload(
            "n=$(cat \"$COINOP_STATE_DIR/n\" 2>/dev/null || echo 0); n=$((n+1)); echo \"incarnation $n\"; " +
            "echo $n > \"$COINOP_STATE_DIR/n.tmp\" && mv \"$COINOP_STATE_DIR/n.tmp\" \"$COINOP_STATE_DIR/n\"; while :; do sleep 1; done");
        using var watch = workload.Watch();
        try
        {
            // The consumer's CLI seals the checkpoint key to every provider; the market stores only sealed keys.
            var submit = await CliTests.CoinopAsync(cluster, ["workload", "submit", "--market", cluster.Url, "--data", Path.Combine(cluster.DataDir, "consumer"),
                "--checkpointed", "--restart", "on-failure:1", "--provider", a.Name, "--cpu", "0.2", "--memory", "64", "--", .. workload.Argv]);
            var id = submit.Trim().Split('\n')[^1];
            await cluster.WaitForStateAsync(id, "live", a.Id, epoch: 1);
            await watch.WaitForEpochAsync(1);
            await cluster.WaitForAsync(id, w => w["checkpoint"] is { } c && (long)c["epoch"]! == 1, "a checkpoint from epoch 1");

            a.Process.KillHard();

            await cluster.WaitForStateAsync(id, "live", b.Id, epoch: 2);
            await watch.WaitForEpochAsync(2);
            var output = await WaitForOutputAsync(cluster, id, "incarnation 2");
            Assert.Contains("incarnation 1", output, StringComparison.Ordinal);
            watch.AssertSingleWriter(minimumSeen: 2);
        }
        catch (Exception ex) when (ex is not Xunit.Sdk.XunitException)
        {
            throw new InvalidOperationException(ex.Message + "\n" + cluster.Diagnostics(), ex);
        }
    }

    [Fact]
    public async Task Cancel_stops_the_copy_and_lease_expiry_completes_the_workload()
    {
        await using var cluster = await WorkloadCluster.StartAsync(providers: 1);
        var cancelled = TestWorkload.Forever();
        var expiring = TestWorkload.Forever();
        using var cancelWatch = cancelled.Watch();
        using var expiryWatch = expiring.Watch();
        try
        {
            var cancelId = (string)(await cluster.SubmitAsync(cancelled.Request()))["id"]!;
            var expiringId = (string)(await cluster.SubmitAsync(expiring.Request(new { duration_seconds = 4 })))["id"]!;
            await cluster.WaitForStateAsync(cancelId, "live");
            await cancelWatch.WaitForEpochAsync(1);

            using var response = await cluster.Http.DeleteAsync($"{cluster.Url}/api/workloads/{cancelId}", Ct);
            Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
            var body = System.Text.Json.Nodes.JsonNode.Parse(await response.Content.ReadAsStringAsync(Ct))!;
            Assert.Equal("cancelled", (string?)body["state"]);
            await cancelWatch.WaitForNoneAsync();
            using var again = await cluster.Http.DeleteAsync($"{cluster.Url}/api/workloads/{cancelId}", Ct);
            Assert.Equal(System.Net.HttpStatusCode.Conflict, again.StatusCode);

            await expiryWatch.WaitForEpochAsync(1);
            var expired = await cluster.WaitForStateAsync(expiringId, "completed");
            Assert.Equal("lease_expired", (string?)expired["reason"]);
            await expiryWatch.WaitForNoneAsync();

            cancelWatch.AssertSingleWriter();
            expiryWatch.AssertSingleWriter();
            Assert.Equal(1, cancelWatch.Seen);
            Assert.Equal(1, expiryWatch.Seen);
        }
        catch (Exception ex) when (ex is not Xunit.Sdk.XunitException)
        {
            throw new InvalidOperationException(ex.Message + "\n" + cluster.Diagnostics(), ex);
        }
    }

    /// <summary>The workload's output so far, once it contains <paramref name="text"/>.</summary>
    internal static async Task<string> WaitForOutputAsync(WorkloadCluster cluster, string id, string text)
    {
        var output = await Coinop.TestKit.Eventually.WaitAsync<string>(async () =>
        {
            var logs = System.Text.Json.Nodes.JsonNode.Parse(await cluster.Http.GetStringAsync($"{cluster.Url}/api/workloads/{id}/logs", Ct))!;
            return string.Concat(logs["entries"]!.AsArray().Select(e => Encoding.UTF8.GetString(Convert.FromBase64String((string)e!["data"]!))));
        }, o => o?.Contains(text, StringComparison.Ordinal) == true, $"'{text}' in the output of {id}", TimeSpan.FromSeconds(60), Ct);
        return output;
    }
}
