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

    private const long MaxBytes = 16L << 40;

    /// <summary>Bytes in <paramref name="mb"/> MiB; -1 (refused by <see cref="Validate"/>) when out of range.</summary>
    public static long Mebibytes(long mb) => mb is > 0 and <= MaxBytes >> 20 ? mb << 20 : -1;

    public void Validate()
    {
        if (MaxProcesses is < 8 or > 4_194_304)
        {
            throw new ArgumentException("A copy's process cap must be between 8 and 4194304.");
        }

        if (TmpBytes is < 1024 * 1024 or > MaxBytes || DiskBytes is < 1024 * 1024 or > MaxBytes)
        {
            throw new ArgumentException("The /tmp and disk caps must be between 1 MB and 16 TB.");
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
