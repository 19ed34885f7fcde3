using Coinop.Core.Protocol;
using Coinop.Core.Workloads;
using Coinop.Market.Gateway;
using Coinop.Storage.Workloads;

namespace Coinop.Market.Workloads;

/// <summary>What a submit came to: the stored workload, or why it was not started (<see cref="Capacity"/>: no room).</summary>
public sealed record SubmitOutcome(StoredWorkload? Workload, string? Problem, bool Capacity = false);

/// <summary>What a consumer command came to: the workload after it, or why it changed nothing.</summary>
public sealed record CommandOutcome(StoredWorkload? Workload, string? Rejection, bool NotFound = false);

/// <summary>Something for the supervisor's loop.</summary>
internal abstract record Command
{
    /// <summary>Tells a waiting caller the command failed.</summary>
    public virtual void Fail(Exception exception)
    {
    }
}

/// <summary>Time passed: every open workload's deadlines are checked, and due settlements run.</summary>
internal sealed record TickCommand : Command;

internal sealed record PlanCommand(WorkloadSpec Spec, string? Pinned, IReadOnlySet<string>? KeyHolders, TaskCompletionSource<(PlacementPlan?, string?)> Done) : Command
{
    public override void Fail(Exception exception) => Done.TrySetException(exception);
}

internal sealed record SubmitCommand(
    string Id, WorkloadSpec Spec, PlacementPlan Plan, WorkloadTerms Terms, IReadOnlyDictionary<string, string> SealedKeys, WorkloadSaveHook? Payment,
    TaskCompletionSource<SubmitOutcome> Done) : Command
{
    public override void Fail(Exception exception) => Done.TrySetException(exception);
}

/// <summary>A consumer's cancel or top-up (<see cref="PaidMsat"/> and <see cref="Payment"/> for a top-up).</summary>
internal sealed record ConsumerCommand(string WorkloadId, WorkloadInput Input, long PaidMsat, WorkloadSaveHook? Payment, TaskCompletionSource<CommandOutcome> Done) : Command
{
    public override void Fail(Exception exception) => Done.TrySetException(exception);
}

internal sealed record HeartbeatCommand(ProviderSession Session, WorkloadHeartbeat Heartbeat) : Command;

/// <summary>A copy exited or was lost (an input for the workload's machine).</summary>
internal sealed record ReportCommand(string WorkloadId, WorkloadInput Input) : Command;

internal sealed record UsageCommand(string ProviderId, UsageRecord Record, SignedUsageRecord Signed) : Command;

internal sealed record ReceiptCommand(string ProviderId, string WorkloadId, long Epoch, string Sealed) : Command;

internal sealed record CheckpointCommand(string ProviderId, string WorkloadId, long Epoch, byte[] Data, string Sha256) : Command;

/// <summary>A provider's session sent its capabilities.</summary>
internal sealed record ProviderUpCommand(ProviderSession Session) : Command;

/// <summary>A command a provider's session queued, counted against that provider's bound (<see cref="ProviderCommandQuota"/>).</summary>
/// <remarks><see cref="LinkEpoch"/> is the epoch of the link it came over: only the provider's current link is obeyed.
/// <see cref="Sequence"/> orders it among every command providers queued (see <see cref="ConfirmedLinks"/>).</remarks>
internal sealed record QueuedByProvider(string ProviderId, long LinkEpoch, Command Command, long Sequence) : Command;

/// <summary>A provider's session ended.</summary>
internal sealed record ProviderGoneCommand(ProviderSession Session) : Command;
