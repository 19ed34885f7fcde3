using System.Net;

namespace Coinop.Provider.Workloads;

/// <summary>Settings of the <see cref="WorkloadHost"/>; validated when the host is created.</summary>
public sealed class WorkloadHostOptions
{
    /// <summary>Copies get their folders under <c>DataDirectory/workloads</c>; keep it short (unix socket paths are limited).</summary>
    public string DataDirectory { get; set; } = "";

    /// <summary>CPU cores this provider offers to workloads (running copies and standby reservations together).</summary>
    public double CpuCores { get; set; }

    /// <summary>Memory in MiB this provider offers to workloads.</summary>
    public long MemoryMb { get; set; }

    /// <summary>How often each copy's usage is recorded and signed (the usage window).</summary>
    public TimeSpan UsageInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a stopped copy gets between SIGTERM and SIGKILL.</summary>
    public TimeSpan StopGrace { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The address port bridges listen on (the host in access receipts must reach it).</summary>
    public IPAddress BridgeAddress { get; set; } = IPAddress.Any;

    /// <summary>How long a client has to send the access preamble.</summary>
    public TimeSpan BridgePreambleTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The largest checkpoint archive a copy may produce (the market's default cap); a larger state is not uploaded.</summary>
    public long MaxCheckpointBytes { get; set; } = 16 * 1024 * 1024;

    /// <summary>What a restore may unpack at most when no size-limited disk bounds the copy's state (a gzip bomb stops here).</summary>
    public long MaxRestoreBytes { get; set; } = 1024L * 1024 * 1024;

    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(DataDirectory))
        {
            throw new ArgumentException("The workload data directory is required.");
        }

        if (!double.IsFinite(CpuCores) || CpuCores <= 0 || MemoryMb <= 0)
        {
            throw new ArgumentException("Workload capacity (cpu cores and memory) must be positive.");
        }

        if (MaxCheckpointBytes <= 0 || MaxRestoreBytes <= 0)
        {
            throw new ArgumentException("Checkpoint size caps must be positive.");
        }

        if (UsageInterval <= TimeSpan.Zero || StopGrace < TimeSpan.Zero || BridgePreambleTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentException("Workload intervals must be positive.");
        }
    }
}
