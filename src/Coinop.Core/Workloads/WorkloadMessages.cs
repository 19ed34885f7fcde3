using Coinop.Core.Work;

namespace Coinop.Core.Workloads;

/// <summary>Something the market observed or decided about one workload; fed to <see cref="WorkloadMachine.Apply"/>.</summary>
public abstract record WorkloadInput
{
    /// <summary>Only time passed.</summary>
    public sealed record Tick : WorkloadInput;

    /// <summary>A provider says it runs a copy at <paramref name="Epoch"/>.</summary>
    public sealed record CopyHeartbeat(string Provider, long Epoch) : WorkloadInput;

    /// <summary>A standby says it still holds its reservation.</summary>
    public sealed record StandbyHeartbeat(string Provider) : WorkloadInput;

    /// <summary>The copy's process exited by itself.</summary>
    public sealed record CopyExited(string Provider, long Epoch, int ExitCode) : WorkloadInput;

    /// <summary>The copy is gone for a reason that is not the workload's own (the provider stopped it after losing contact...).</summary>
    public sealed record CopyLost(string Provider, long Epoch, string Reason) : WorkloadInput;

    /// <summary>The supervisor revoked <paramref name="Epoch"/> in the store (the kernel fence moved past it).</summary>
    public sealed record LeaseRevoked(long Epoch) : WorkloadInput;

    /// <summary>The supervisor found a provider for the respawn at <paramref name="Epoch"/>.</summary>
    public sealed record CopyPlaced(string Provider, long Epoch) : WorkloadInput;

    /// <summary>The supervisor found no provider for the respawn at <paramref name="Epoch"/>.</summary>
    public sealed record PlacementFailed(long Epoch, string Reason) : WorkloadInput;

    /// <summary>The supervisor reserved a further standby (say, to replace a promoted one).</summary>
    public sealed record StandbyAdded(string Provider) : WorkloadInput;

    /// <summary>The copy at <paramref name="Epoch"/> uploaded a checkpoint.</summary>
    public sealed record CheckpointStored(string Provider, long Epoch, string Checkpoint) : WorkloadInput;

    /// <summary>The consumer paid for more time.</summary>
    public sealed record TopUp(TimeSpan Extra) : WorkloadInput;

    /// <summary>The consumer cancelled.</summary>
    public sealed record Cancel(string RequestedBy) : WorkloadInput;
}

/// <summary>
/// What the supervisor must do, in order. Nothing that starts a copy is ever emitted before the previous epoch's
/// <see cref="RevokeLease"/> was confirmed with <see cref="WorkloadInput.LeaseRevoked"/>.
/// </summary>
public abstract record WorkloadEffect
{
    /// <summary>Start a copy (the first one, or a respawn) on <paramref name="Provider"/> at <paramref name="Epoch"/>.</summary>
    public sealed record StartCopy(string Provider, long Epoch, string? RestoreCheckpoint) : WorkloadEffect;

    /// <summary>Turn the standby <paramref name="Provider"/> into the primary at <paramref name="Epoch"/> (grant it that fence, then start its copy).</summary>
    public sealed record PromoteStandby(string Provider, long Epoch, string? RestoreCheckpoint) : WorkloadEffect;

    /// <summary>Tell <paramref name="Provider"/> to stop its copy at <paramref name="Epoch"/> (it is not, or no longer, allowed to run).</summary>
    public sealed record StopCopy(string Provider, long Epoch, string Reason) : WorkloadEffect;

    /// <summary>Revoke <paramref name="Epoch"/> in the store (kernel revoke, expecting that fence), then report <see cref="WorkloadInput.LeaseRevoked"/>.</summary>
    public sealed record RevokeLease(long Epoch) : WorkloadEffect;

    /// <summary>The heartbeat was from the copy allowed to run: renew its kernel lease and acknowledge the heartbeat.</summary>
    public sealed record RenewLease(string Provider, long Epoch) : WorkloadEffect;

    /// <summary>
    /// Find a provider for a respawn at <paramref name="Epoch"/>, preferably not <paramref name="Avoid"/> (the one just
    /// lost); answer with <see cref="WorkloadInput.CopyPlaced"/> or <see cref="WorkloadInput.PlacementFailed"/>.
    /// </summary>
    public sealed record PlaceCopy(long Epoch, int Attempt, string Avoid) : WorkloadEffect;

    public sealed record ReserveStandby(string Provider) : WorkloadEffect;

    public sealed record ReleaseStandby(string Provider) : WorkloadEffect;

    /// <summary>Close the workload's kernel work item with this terminal.</summary>
    public sealed record FinishWork(WorkTerminalKind Kind, string Reason) : WorkloadEffect;
}

/// <summary>
/// The workload after an input and the effects to execute. A rejection says the input itself changed nothing; the
/// effects still have to be executed, because the time that passed may have moved the workload (say, its lease ran out).
/// </summary>
public sealed record WorkloadDecision(Workload Next, IReadOnlyList<WorkloadEffect> Effects, string? Rejection = null);
