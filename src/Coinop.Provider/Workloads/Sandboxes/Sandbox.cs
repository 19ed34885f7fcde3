using System.Threading.Channels;

namespace Coinop.Provider.Workloads.Sandboxes;

/// <summary>Runs copies of workloads in one kind of isolation.</summary>
public interface ISandbox
{
    /// <summary>"bubblewrap", "none" (a plain process) or "docker".</summary>
    string Kind { get; }

    /// <summary>The isolation level advertised to the market: <c>bubblewrap</c>, <c>docker</c> or <c>none</c>.</summary>
    string Isolation { get; }

    /// <summary>Whether CPU and memory limits are enforced only approximately (no writable cgroup).</summary>
    bool ApproximateLimits { get; }

    /// <summary>Whether copies may open connections beyond their own sandbox (only docker with <c>--workload-egress</c>).</summary>
    bool Egress { get; }

    /// <summary>Makes the copy's folders under <paramref name="root"/> (its user, its size-limited disk), ready for a restore.</summary>
    Task<CopyFolders> PrepareAsync(CopySpec spec, string root, CancellationToken cancellationToken);

    Task<IRunningCopy> StartAsync(SandboxLaunch launch, CancellationToken cancellationToken);
}

/// <summary>What a sandbox needs to start a copy: the request and the folders <see cref="ISandbox.PrepareAsync"/> made for it.</summary>
public sealed record SandboxLaunch(CopySpec Spec, CopyFolders Folders);

/// <summary>A running copy. Disposing it kills whatever is left.</summary>
public interface IRunningCopy : IAsyncDisposable
{
    /// <summary>The host pid of the copy's top process (the sandbox's launcher for bubblewrap).</summary>
    int Pid { get; }

    /// <summary>stdout and stderr as they arrive; completes when the copy has exited and its pipes are drained.</summary>
    ChannelReader<OutputChunk> Output { get; }

    /// <summary>Completes when the copy has exited and everything it left behind is gone.</summary>
    Task<CopyExit> Exited { get; }

    /// <summary>Host pids of every process of the copy that is still alive (tests read the process table with it).</summary>
    IReadOnlyList<int> LivePids();

    /// <summary>Cumulative usage since start; monotonic.</summary>
    UsageSnapshot Usage();

    /// <summary>Opens a stream to the workload's port (inside its network namespace where it has one).</summary>
    ValueTask<Stream> ConnectToPortAsync(CancellationToken cancellationToken);

    /// <summary>SIGTERM to every process of the copy, SIGKILL to whatever is left after <paramref name="grace"/>.</summary>
    Task<CopyExit> StopAsync(TimeSpan grace, CancellationToken cancellationToken);
}

public enum OutputStream
{
    Stdout,
    Stderr,
}

/// <summary>A piece of a copy's output, in the order the process wrote it to that stream.</summary>
public sealed record OutputChunk(OutputStream Stream, ReadOnlyMemory<byte> Data);

/// <summary>
/// How a copy ended: its exit code (128+signal when killed), whether the memory limit killed it, and which other limit
/// (disk) made the agent stop it, if any.
/// </summary>
public sealed record CopyExit(int ExitCode, bool OomKilled, bool Stopped, string? LimitExceeded = null);

/// <summary>Cumulative resource use of a copy.</summary>
public readonly record struct UsageSnapshot(
    double CpuCoreSeconds,
    double MemoryMibSeconds,
    double WallSeconds,
    double MemoryMib,
    double PeakMemoryMib);

/// <summary>A sandbox could not start a copy (or cannot be used on this machine at all).</summary>
public sealed class SandboxException(string message, Exception? inner = null) : Exception(message, inner);
