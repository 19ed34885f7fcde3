using Coinop.Provider.Workloads.Limits;
using Coinop.Provider.Workloads.Metering;
using Coinop.TestKit;

namespace Coinop.Provider.Tests.Workloads;

public class DiesWithAgentTests
{
    [Theory]
    [InlineData("bubblewrap", false)]
    [InlineData("process", false)]
    [InlineData("bubblewrap", true)]
    [InlineData("process", true)]
    public async Task A_copy_dies_when_its_agent_is_killed_with_sigkill(string kind, bool hangupIgnored)
    {
        using var dir = new TempDirectory();
        // An agent run under nohup (or a service manager that ignores SIGHUP) hands its children SIGHUP ignored. No
        // cgroups there: the next agent to start sweeps a dead agent's groups, which would kill survivors for it.
        await using var agent = hangupIgnored
            ? ChildProcess.Start("probe-agent", "/usr/bin/env", ["--ignore-signal=HUP", Probe.DotnetHost, Probe.Dll, "agent", kind, dir.Path, "no-cgroups"])
            : ChildProcess.Start("probe-agent", Probe.DotnetHost, [Probe.Dll, "agent", kind, dir.Path]);
        var line = await agent.WaitForLineAsync("copy-pids:", TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);
        var pids = line["copy-pids:".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToList();
        // bubblewrap: launcher, its init, the shell and sleep; process: the shell and sleep.
        Assert.True(pids.Count >= (kind == "bubblewrap" ? 4 : 2), line);
        var starts = pids.ToDictionary(p => p, p => ProcFs.ReadStat(p)?.StartTicks);
        Assert.All(starts.Values, s => Assert.NotNull(s));

        agent.KillHard();

        // A pid counts as gone when it is absent or now names a different (newer) process.
        try
        {
            await Eventually.WaitAsync(
                () => Task.FromResult<List<int>?>([.. pids.Where(p => ProcFs.ReadStat(p)?.StartTicks == starts[p])]),
                alive => alive!.Count == 0,
                "the copy's processes to die with the agent",
                TimeSpan.FromSeconds(30),
                TestContext.Current.CancellationToken);
        }
        catch (TimeoutException ex)
        {
            // Say what survived and in which state (stopped, zombie, whose child), so a failure explains itself.
            var survivors = pids.Where(p => ProcFs.ReadStat(p)?.StartTicks == starts[p]).Select(Describe);
            throw new TimeoutException($"{ex.Message}\nstill running: {string.Join("; ", survivors)}", ex);
        }

        // The dead agent's cgroups are swept by the next agent that starts on this machine (a test running beside
        // this one may already have done it).
        if (Sandboxes.Cgroups.Mode != LimitEnforcement.Approximate)
        {
            Assert.NotEqual(LimitEnforcement.Approximate, Cgroups.Detect().Mode);
            Assert.Empty(AgentGroups(agent.Pid));
        }
    }

    private static string Describe(int pid)
    {
        try
        {
            var status = File.ReadAllLines($"/proc/{pid}/status").Where(l => l.StartsWith("Name:", StringComparison.Ordinal) || l.StartsWith("State:", StringComparison.Ordinal) || l.StartsWith("PPid:", StringComparison.Ordinal) || l.StartsWith("SigPnd:", StringComparison.Ordinal) || l.StartsWith("ShdPnd:", StringComparison.Ordinal));
            return $"{pid} [{string.Join(", ", status.Select(l => l.Replace('\t', ' ')))}]";
        }
        catch (IOException)
        {
            return $"{pid} (gone)";
        }
    }

    private static List<string> AgentGroups(int agentPid) =>
        [.. Directory.EnumerateDirectories("/sys/fs/cgroup", $"agent-{agentPid}-*", new EnumerationOptions { RecurseSubdirectories = true, MaxRecursionDepth = 6, IgnoreInaccessible = true })];
}
