using Coinop.Workloads.Tests.Infrastructure;

namespace Coinop.Workloads.Tests;

/// <summary>Checkpoints of a copy whose state changes under the archiver keep coming (a real provider, a real copy).</summary>
public sealed class CheckpointFaultTests
{
    [Fact]
    public async Task Checkpoints_go_on_after_files_vanish_in_the_middle_of_an_archive()
    {
        await using var cluster = await WorkloadCluster.StartAsync(providers: 1);
        // Files appear and vanish in the state folder as fast as perl can make them for a few seconds (several
        // checkpoint intervals), then the state stays still.
        var workload = new TestWorkload("""
            perl -e 'my ($d, $end, $i) = ($ENV{COINOP_STATE_DIR}, time + 4, 0);
                while (time < $end) { open(my $f, ">", "$d/f" . ($i % 64)) or die; print $f "x" x 512; close $f; unlink "$d/f" . (($i + 32) % 64); $i++ }'
            echo calm; while :; do sleep 1; done
            """);
        try
        {
            var submit = await CliTests.CoinopAsync(cluster, ["workload", "submit", "--market", cluster.Url, "--data", Path.Combine(cluster.DataDir, "consumer"),
                "--checkpointed", "--cpu", "0.5", "--memory", "128", "--", .. workload.Argv]);
            var id = submit.Trim().Split('\n')[^1];
            await cluster.WaitForStateAsync(id, "live");
            await LifecycleTests.WaitForOutputAsync(cluster, id, "calm");

            // Two checkpoints newer than the one held when the churn ended: the second was surely taken after it.
            var seen = new HashSet<string>();
            if ((await cluster.GetAsync(id))["checkpoint"]?["id"] is { } held)
            {
                seen.Add((string)held!);
            }

            var before = seen.Count;
            await cluster.WaitForAsync(id, w =>
            {
                if (w["checkpoint"]?["id"] is { } c)
                {
                    seen.Add((string)c!);
                }

                return seen.Count >= before + 2;
            }, "two checkpoints after the churn", TimeSpan.FromSeconds(60));
        }
        catch (Exception ex) when (ex is not Xunit.Sdk.XunitException)
        {
            throw new InvalidOperationException(ex.Message + "\n" + cluster.Diagnostics(), ex);
        }
    }
}
