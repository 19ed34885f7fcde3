using Coinop.Workloads.Tests.Infrastructure;

namespace Coinop.Workloads.Tests;

/// <summary>
/// A tenant that tries to exhaust a provider (issue 9 item 5): it fills /tmp, forks until it cannot, then fills its
/// disk. On a real provider with small caps (<c>--workload-pids</c>, <c>--workload-tmp</c>, <c>--workload-disk</c>) each
/// is held or stopped, and another consumer's workload placed on the same provider meanwhile starts and keeps running.
/// </summary>
public sealed class TenantLimitTests
{
    // Fills /tmp, then forks children that stay until a fork fails, then writes 1 MiB files into /work for ever; all in
    // one process (the forked children leave no room for another program to start).
    private const string Hog =
        "exec perl -e '$| = 1; my $mb = \"\\0\" x 1048576; " +
        "open(T, \">\", \"/tmp/fill\") or die; my $t = 0; $t++ while defined syswrite(T, $mb); print \"tmp full at $t MiB: $!\\n\"; close T; " +
        "my $n = 0; while (1) { my $p = fork; if (!defined $p) { print \"fork failed after $n: $!\\n\"; last } if ($p == 0) { sleep 600; exit } $n++ } " +
        "for (my $i = 0; ; $i++) { open(F, \">\", \"$ENV{COINOP_WORK_DIR}/f$i\") or die \"open: $!\"; syswrite(F, $mb); close F }'";

    [Fact]
    public async Task A_tenant_filling_tmp_forking_and_filling_its_disk_is_held_and_stopped_while_the_provider_serves_another()
    {
        await using var cluster = await WorkloadCluster.StartAsync(providers: 1, providerArgs: ["--workload-pids", "40", "--workload-tmp", "8", "--workload-disk", "16"]);
        try
        {
            var hog = new TestWorkload(Hog);
            var hogId = (string)(await cluster.SubmitAsync(hog.Request(new { restart = "never" })))["id"]!;
            var hogOutput = await LifecycleTests.WaitForOutputAsync(cluster, hogId, "fork failed");

            // With the hog held at its process cap, another workload still starts on the same provider.
            var other = TestWorkload.Forever();
            var otherId = (string)(await cluster.SubmitAsync(other.Request()))["id"]!;
            await LifecycleTests.WaitForOutputAsync(cluster, otherId, "started epoch");

            var hogDone = await cluster.WaitForStateAsync(hogId, "failed");
            hogOutput = await LifecycleTests.WaitForOutputAsync(cluster, hogId, "disk cap");
            // Its output can arrive before its report that it runs: wait for the state, not only the line.
            var otherNow = await cluster.WaitForStateAsync(otherId, "live");

            TestContext.Current.TestOutputHelper?.WriteLine(hogOutput);
            Assert.Contains("tmp full at 8 MiB: No space left on device", hogOutput, StringComparison.Ordinal);
            var forked = System.Text.RegularExpressions.Regex.Match(hogOutput, @"fork failed after (\d+): Resource temporarily unavailable");
            Assert.True(forked.Success, "the fork bomb never hit its cap");
            // 40 processes in the copy's user namespace: the bomb itself and its children (fewer while earlier ones exit).
            Assert.InRange(int.Parse(forked.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), 20, 39);
            Assert.Contains("the copy was stopped: /work and /state hold more than the copy's disk cap of 16 MiB", hogOutput, StringComparison.Ordinal);
            Assert.StartsWith("crashed", (string?)hogDone["reason"], StringComparison.Ordinal);
            Assert.Equal("live", (string?)otherNow["state"]);
            Assert.Equal((string?)hogDone["provider"], (string?)otherNow["provider"]);
        }
        catch (Exception ex) when (ex is not Xunit.Sdk.XunitException)
        {
            throw new InvalidOperationException(ex.Message + "\n" + cluster.Diagnostics(), ex);
        }
    }
}
