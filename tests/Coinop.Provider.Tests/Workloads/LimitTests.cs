using Coinop.Provider.Workloads.Limits;
using Coinop.TestKit;

namespace Coinop.Provider.Tests.Workloads;

/// <summary>CPU and memory limits in both local sandboxes, with cgroups and with the approximate fallback.</summary>
[Collection(nameof(CpuSensitive))]
public class LimitTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<string, string> Modes => new()
    {
        { "bubblewrap", "cgroup" },
        { "bubblewrap", "approximate" },
        { "process", "cgroup" },
        { "process", "approximate" },
    };

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task A_memory_hog_is_killed_at_its_limit(string kind, string limits)
    {
        var sandbox = await Sandboxes.CreateAsync(kind, limits);
        using var dir = new TempDirectory();
        // tail keeps everything it reads while it looks for a newline that /dev/zero never sends.
        await using var copy = await sandbox.StartAsync(await Sandboxes.LaunchAsync(sandbox, dir, Sandboxes.Spec("tail", ["/dev/zero"], memoryMb: 64)), Ct);
        var output = Sandboxes.ReadAllAsync(copy);
        var exit = await copy.Exited.WaitAsync(TimeSpan.FromSeconds(60), Ct);
        var (_, stderr) = await output;
        var usage = copy.Usage();
        TestContext.Current.TestOutputHelper?.WriteLine($"{sandbox.Isolation}: exit {exit.ExitCode}, oom {exit.OomKilled}, peak {usage.PeakMemoryMib:F1} MiB, stderr: {stderr.Trim()}");
        Assert.NotEqual(0, exit.ExitCode);
        Assert.True(usage.PeakMemoryMib <= 64 * 1.1, $"peak {usage.PeakMemoryMib:F1} MiB over a 64 MiB limit");
        if (sandbox.Limits == LimitEnforcement.Approximate)
        {
            // RLIMIT_AS: the allocation that would cross the limit fails and tail gives up.
            Assert.Contains("memory exhausted", stderr, StringComparison.OrdinalIgnoreCase);
        }
        else
        {
            Assert.True(exit.OomKilled, "the cgroup reports no OOM kill");
            Assert.Equal(128 + 9, exit.ExitCode);
        }
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task A_cpu_hog_is_held_near_its_share(string kind, string limits)
    {
        var sandbox = await Sandboxes.CreateAsync(kind, limits);
        using var dir = new TempDirectory();
        // Two busy loops could use two cores; the limit is half of one.
        var spec = Sandboxes.Spec("sh", ["-c", "while :; do :; done & while :; do :; done"], cpu: 0.5);
        await using var copy = await sandbox.StartAsync(await Sandboxes.LaunchAsync(sandbox, dir, spec), Ct);
        var share = await CpuShare.MeasureAsync(copy, TimeSpan.FromSeconds(2));
        TestContext.Current.TestOutputHelper?.WriteLine($"{sandbox.Isolation}: {share:F3} cores used under a 0.5 core limit");
        // The upper bound is the limit; the lower one only catches a duty cycle that holds far too long (other test
        // processes on the machine may take CPU from the hog, so it is loose).
        Assert.InRange(share, 0.1, 0.8);
    }
}
