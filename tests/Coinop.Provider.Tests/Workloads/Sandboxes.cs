using System.Text;
using Coinop.Provider.Workloads;
using Coinop.Provider.Workloads.Limits;
using Coinop.Provider.Workloads.Sandboxes;
using Coinop.TestKit;
using Microsoft.Extensions.Logging.Abstractions;

namespace Coinop.Provider.Tests.Workloads;

/// <summary>Builds real sandboxes for tests and runs copies in fresh temp folders.</summary>
internal static class Sandboxes
{
    private static readonly Lazy<Cgroups> DetectedCgroups = new(Cgroups.Detect);

    public static Cgroups Cgroups => DetectedCgroups.Value;

    public static Task<LocalSandbox> BubblewrapAsync(Cgroups? cgroups = null) =>
        LocalSandbox.CreateBubblewrapAsync(new LocalSandboxOptions(), cgroups ?? Cgroups, TimeProvider.System, NullLogger.Instance, TestContext.Current.CancellationToken);

    public static LocalSandbox Process(Cgroups? cgroups = null) =>
        LocalSandbox.CreateProcess(new LocalSandboxOptions(), cgroups ?? Cgroups, TimeProvider.System, NullLogger.Instance);

    /// <summary>
    /// A sandbox of the named kind: limits "cgroup" needs a writable cgroup (skipped without), "approximate" uses none,
    /// "machine" takes whatever this machine has.
    /// </summary>
    public static async Task<LocalSandbox> CreateAsync(string kind, string limits)
    {
        var cgroups = limits == "approximate" ? Cgroups.None("test") : Cgroups;
        if (limits == "cgroup")
        {
            Assert.SkipWhen(cgroups.Mode == LimitEnforcement.Approximate, "no writable cgroup on this machine: " + cgroups.Description);
        }

        return kind == "bubblewrap" ? await BubblewrapAsync(cgroups) : Process(cgroups);
    }

    public static CopySpec Spec(string command, IReadOnlyList<string> args, double cpu = 1, long memoryMb = 256, int? port = null, string? credential = null, bool state = false) =>
        new("w" + Guid.NewGuid().ToString("N")[..12], 1, command, args, new Dictionary<string, string>(), cpu, memoryMb, port, state, credential ?? (port is null ? null : "secret-" + Guid.NewGuid().ToString("N")));

    /// <summary>The copy's folders, made by the sandbox under <paramref name="dir"/> (removed with it).</summary>
    public static async Task<SandboxLaunch> LaunchAsync(ISandbox sandbox, TempDirectory dir, CopySpec spec) =>
        new(spec, await sandbox.PrepareAsync(spec, Path.Combine(dir.Path, "copy"), TestContext.Current.CancellationToken));

    /// <summary>Collects a copy's output until it ends.</summary>
    public static async Task<(string Stdout, string Stderr)> ReadAllAsync(IRunningCopy copy)
    {
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        await foreach (var chunk in copy.Output.ReadAllAsync(TestContext.Current.CancellationToken))
        {
            (chunk.Stream == OutputStream.Stdout ? stdout : stderr).Append(Encoding.UTF8.GetString(chunk.Data.Span));
        }

        return (stdout.ToString(), stderr.ToString());
    }
}
