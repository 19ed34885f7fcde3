namespace Coinop.Provider.Workloads.Limits;

/// <summary>
/// Per-copy limits beyond CPU and memory, the same for every copy of a provider: what a tenant could otherwise exhaust
/// for everyone (process table, disk, the tmpfs in memory). How each is enforced depends on the sandbox; see
/// docs/security.md.
/// </summary>
public sealed class CopyLimits
{
    /// <summary>Most processes and threads one copy may have at once (pids.max, RLIMIT_NPROC, docker's pids limit).</summary>
    public int MaxProcesses { get; set; } = 512;

    /// <summary>Size of the copy's own <c>/tmp</c> (a tmpfs, so it is memory too).</summary>
    public long TmpBytes { get; set; } = 64L * 1024 * 1024;

    /// <summary>What <c>/work</c> and <c>/state</c> may hold together on the provider's disk.</summary>
    public long DiskBytes { get; set; } = 1024L * 1024 * 1024;

    /// <summary>How often the copy's folders are measured against <see cref="DiskBytes"/>.</summary>
    public TimeSpan DiskCheckInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>When the agent runs as root, each running copy gets its own uid (and gid) from this range.</summary>
    public int FirstCopyUid { get; set; } = 1_000_000_000;

    public int CopyUidCount { get; set; } = 65536;

    public void Validate()
    {
        if (MaxProcesses < 8)
        {
            throw new ArgumentException("A copy needs at least 8 processes.");
        }

        if (TmpBytes < 1024 * 1024 || DiskBytes < 1024 * 1024)
        {
            throw new ArgumentException("The /tmp and disk caps must be at least 1 MiB.");
        }

        if (DiskCheckInterval <= TimeSpan.Zero)
        {
            throw new ArgumentException("The disk check interval must be positive.");
        }

        if (FirstCopyUid <= 0 || CopyUidCount <= 0 || (long)FirstCopyUid + CopyUidCount > uint.MaxValue - 1)
        {
            throw new ArgumentException("The copy uid range must be positive and below 2^32-1.");
        }
    }
}
