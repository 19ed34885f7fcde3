using Coinop.Core.Workloads;
using Coinop.Provider.Workloads.Sandboxes;

namespace Coinop.Provider.Workloads;

/// <summary>Something a copy did that the market must hear about.</summary>
public abstract record WorkloadEvent(string WorkloadId, long Epoch);

/// <summary>A signed usage record for one window of a copy's life (the last one covers up to its exit).</summary>
public sealed record WorkloadUsage(string WorkloadId, long Epoch, UsageRecord Record, SignedUsageRecord Signed) : WorkloadEvent(WorkloadId, Epoch);

/// <summary>The copy ended; its final usage record was sent just before.</summary>
public sealed record WorkloadExited(string WorkloadId, long Epoch, CopyExit Exit) : WorkloadEvent(WorkloadId, Epoch);

/// <summary>Output of a copy.</summary>
public sealed record WorkloadLog(string WorkloadId, long Epoch, OutputStream Stream, ReadOnlyMemory<byte> Data) : WorkloadEvent(WorkloadId, Epoch);

/// <summary>Why a start was refused.</summary>
public enum StartRefusal
{
    Invalid,
    StaleEpoch,
    EpochAlreadyUsed,
    OverCapacity,
    CheckpointFailed,
    SandboxFailed,
}

/// <summary>The outcome of a start: the copy's pid and bridge port, or why it did not start.</summary>
public sealed record StartResult(bool Started, StartRefusal? Refusal, string? Error, int? Pid, int? BridgePort)
{
    public static StartResult Refused(StartRefusal refusal, string error) => new(false, refusal, error, null, null);
}

/// <summary>Capacity of this provider and what running copies and standby reservations hold of it.</summary>
public sealed record WorkloadCapacityView(double CpuCores, long MemoryMb, double ReservedCpuCores, long ReservedMemoryMb, int RunningCopies, int Standbys);
