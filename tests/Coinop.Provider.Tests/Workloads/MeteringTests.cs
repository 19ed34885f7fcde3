using Coinop.Provider.Workloads.Sandboxes;
using Coinop.TestKit;

namespace Coinop.Provider.Tests.Workloads;

public class MeteringTests
{
    [Theory]
    [InlineData("bubblewrap")]
    [InlineData("process")]
    public async Task Usage_only_grows_and_stop_takes_the_whole_tree_down(string kind)
    {
        var sandbox = await Sandboxes.CreateAsync(kind, "machine");
        using var dir = new TempDirectory();
        // A busy child and a resident 32 MB string in the parent.
        var spec = Sandboxes.Spec("sh", ["-c", "while :; do :; done & x=$(head -c 33554432 /dev/zero | tr '\\0' a); echo ready; wait"], cpu: 1, memoryMb: 512);
        await using var copy = await sandbox.StartAsync(await Sandboxes.LaunchAsync(sandbox, dir, spec), TestContext.Current.CancellationToken);
        var ready = new TaskCompletionSource();
        _ = Task.Run(async () =>
        {
            await foreach (var chunk in copy.Output.ReadAllAsync(TestContext.Current.CancellationToken))
            {
                if (System.Text.Encoding.UTF8.GetString(chunk.Data.Span).Contains("ready", StringComparison.Ordinal))
                {
                    ready.TrySetResult();
                }
            }
        }, TestContext.Current.CancellationToken);
        await ready.Task.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);

        var samples = new List<UsageSnapshot>();
        for (var i = 0; i < 8; i++)
        {
            samples.Add(copy.Usage());
            await Task.Delay(100, TestContext.Current.CancellationToken);
        }

        for (var i = 1; i < samples.Count; i++)
        {
            Assert.True(samples[i].CpuCoreSeconds >= samples[i - 1].CpuCoreSeconds);
            Assert.True(samples[i].MemoryMibSeconds >= samples[i - 1].MemoryMibSeconds);
            Assert.True(samples[i].WallSeconds > samples[i - 1].WallSeconds);
        }

        var last = samples[^1];
        TestContext.Current.TestOutputHelper?.WriteLine($"{sandbox.Isolation}: cpu {last.CpuCoreSeconds:F3} core-s over {last.WallSeconds:F3} s, memory now {last.MemoryMib:F1} MiB, {last.MemoryMibSeconds:F1} MiB-s");
        Assert.True(last.CpuCoreSeconds > samples[0].CpuCoreSeconds, "the busy loop used no CPU");
        Assert.InRange(last.MemoryMib, 16, 512);

        var pids = copy.LivePids();
        var exit = await copy.StopAsync(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken);
        Assert.True(exit.Stopped);
        Assert.Empty(copy.LivePids());
        Assert.All(pids, pid => Assert.False(File.Exists($"/proc/{pid}/stat") && File.ReadAllText($"/proc/{pid}/cmdline").StartsWith("sh", StringComparison.Ordinal), $"pid {pid} survived the stop"));
        var after = copy.Usage();
        Assert.True(after.CpuCoreSeconds >= last.CpuCoreSeconds);
        Assert.Equal(after, copy.Usage());
    }
}
