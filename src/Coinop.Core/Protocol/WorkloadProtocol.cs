using Coinop.Core.Workloads;

namespace Coinop.Core.Protocol;

// ---- market → provider ------------------------------------------------------------------------

/// <summary>
/// Market → provider: run a copy of a workload at <see cref="Epoch"/> (<see cref="Role"/> <c>primary</c>), or hold
/// capacity for it as a warm standby (<c>standby</c>: nothing runs). Promoting a standby is a <c>primary</c> start at
/// the next epoch sent to the provider holding the reservation, which then becomes the copy's capacity.
/// </summary>
/// <param name="SealedCheckpointKey">The workload's checkpoint key sealed to this provider's X25519 key (base64), for a checkpointed workload.</param>
/// <param name="Checkpoint">The encrypted checkpoint to restore before the command starts (base64), if there is one.</param>
/// <param name="SealTo">The consumer's X25519 public key (base64) the access receipt is sealed to, for a workload with a port.</param>
/// <param name="LeaseUntilUnixMs">When the paid time runs out (the access receipt's validity; the market stops the copy then).</param>
public sealed record WorkloadStart(
    string WorkloadId,
    long Epoch,
    string Role,
    WorkloadCopySpec Spec,
    string? SealedCheckpointKey,
    string? Checkpoint,
    string? SealTo,
    long LeaseUntilUnixMs,
    WorkloadLinkTimings Timings) : ProtocolMessage
{
    public const string Primary = "primary";
    public const string Standby = "standby";
}

/// <summary>What the provider runs: the command, its limits, its port and whether it keeps a state directory.</summary>
public sealed record WorkloadCopySpec(string Command, IReadOnlyList<string> Args, double CpuCores, long MemoryMb, int? Port, bool Checkpointed);

/// <summary>
/// The deadlines the market derives from its knobs (see <see cref="WorkloadTimings.ForMarket"/>): heartbeat every
/// <see cref="HeartbeatIntervalMs"/>, stop a copy <see cref="StopAfterMs"/> after sending the last heartbeat the market
/// acknowledged, checkpoint every <see cref="CheckpointIntervalMs"/>.
/// </summary>
public sealed record WorkloadLinkTimings(int HeartbeatIntervalMs, int StopAfterMs, int CheckpointIntervalMs);

/// <summary>Market → provider: stop the copy if its epoch is at most <see cref="Epoch"/> (and never start that epoch again).</summary>
public sealed record WorkloadStop(string WorkloadId, long Epoch, string Reason) : ProtocolMessage;

/// <summary>Market → provider: drop the standby reservation held for the workload.</summary>
public sealed record WorkloadRelease(string WorkloadId) : ProtocolMessage;

/// <summary>
/// Market → provider: the answer to <see cref="WorkloadHeartbeat"/> <see cref="Seq"/>: the copies it accepted (their
/// leases renewed). Only those may measure their stop deadline from that heartbeat's send time; every other copy
/// named in it gets a <see cref="WorkloadStop"/> instead.
/// </summary>
public sealed record WorkloadAck(long Seq, IReadOnlyList<CopyRef> Renewed) : ProtocolMessage;

/// <summary>One copy: a workload and the epoch it runs at.</summary>
public sealed record CopyRef(string WorkloadId, long Epoch);

// ---- provider → market ------------------------------------------------------------------------

/// <summary>
/// Provider → market, every heartbeat interval while it runs copies or holds standbys, and once right after every
/// (re)connect: everything it has, so the market can renew what is current and stop the rest.
/// </summary>
public sealed record WorkloadHeartbeat(long Seq, string Incarnation, IReadOnlyList<CopyRef> Copies, IReadOnlyList<string> Standbys) : ProtocolMessage;

/// <summary>Provider → market: the copy's process exited by itself (128 + signal when a signal killed it).</summary>
public sealed record WorkloadExited(string WorkloadId, long Epoch, int ExitCode, bool OomKilled) : ProtocolMessage;

/// <summary>
/// Provider → market: the copy is gone for a reason that is not its own: it could not start, the provider stopped it
/// after losing contact with the market (<c>stopped_by_rule</c>), or the provider is draining.
/// </summary>
public sealed record WorkloadLost(string WorkloadId, long Epoch, string Reason) : ProtocolMessage
{
    public const string StartFailed = "start_failed";
    public const string StoppedByRule = "stopped_by_rule";
    public const string ProviderDraining = "provider_draining";
}

/// <summary>Provider → market: a signed usage record of one window of the copy's life.</summary>
public sealed record WorkloadUsage(string WorkloadId, long Epoch, SignedUsageRecord Record) : ProtocolMessage;

/// <summary>Provider → market: the copy's access receipt sealed to the consumer (base64); the market cannot read it.</summary>
public sealed record WorkloadReceipt(string WorkloadId, long Epoch, string Sealed) : ProtocolMessage;

/// <summary>
/// Provider → market: ends a checkpoint upload. The archive's bytes came before in <see cref="ChunkFrame.KindCheckpointChunk"/>
/// frames; the market keeps it only when size and SHA-256 (hex) match and <see cref="Epoch"/> is the current fence.
/// </summary>
public sealed record WorkloadCheckpoint(string WorkloadId, long Epoch, long Size, string Sha256) : ProtocolMessage;
