using Coinop.Core.Work;

namespace Coinop.Storage.Work;

/// <summary>One history entry of a work item: what happened, at which fence, written by whom.</summary>
public sealed record WorkEvent(long Seq, string WorkId, DateTimeOffset At, string Kind, long Fence, string Writer, LeaseOwner? Owner, string? Detail);

/// <summary>What one sweep pass did.</summary>
/// <param name="Terminalised">Items it closed (deadline passed, death evidence, reconciled abandon request).</param>
/// <param name="Released">Items whose lapsed (or dead holder's) lease it released for another claim.</param>
/// <param name="Lapsed">Started owner-bound items whose lease lapsed without evidence: left open, for an operator.</param>
public sealed record WorkSweepReport(IReadOnlyList<string> Terminalised, IReadOnlyList<string> Released, IReadOnlyList<string> Lapsed);

/// <summary>What draining one owner did.</summary>
/// <param name="Deferred">Its started work that another owner holds a live lease on; drain again later.</param>
public sealed record OwnerDrainReport(IReadOnlyList<string> Abandoned, IReadOnlyList<string> Released, IReadOnlyList<string> Deferred);

/// <summary>
/// The durable-work kernel's store: the <see cref="WorkKernel"/> rules applied atomically. Every change reads the
/// row, decides with the kernel, and writes with <c>UPDATE … WHERE id AND version AND fence AND terminal IS NULL</c>,
/// so of two market nodes deciding on the same row only one write lands (the other re-reads and decides again), a
/// stale fence changes nothing, and a terminal row is never written again. Each change appends its history entry in
/// the same transaction.
/// </summary>
public interface IWorkStore
{
    Task<WorkDecision> RegisterAsync(WorkRegistration registration, CancellationToken cancellationToken);

    Task<WorkDecision> ClaimAsync(string id, LeaseOwner owner, LeaseTimings timings, CancellationToken cancellationToken);

    /// <summary>Hands a just-revoked fence to a named successor (see <see cref="WorkKernel.Grant"/>).</summary>
    Task<WorkDecision> GrantAsync(string id, long expectedFence, LeaseOwner owner, LeaseTimings timings, CancellationToken cancellationToken);

    Task<WorkDecision> RenewAsync(string id, LeaseProof proof, LeaseTimings timings, CancellationToken cancellationToken);

    Task<WorkDecision> RecordStartedAsync(string id, LeaseProof proof, CancellationToken cancellationToken);

    Task<WorkDecision> WriteProgressAsync(string id, LeaseProof proof, string progress, CancellationToken cancellationToken);

    Task<WorkDecision> WriteUsageAsync(string id, LeaseProof proof, string usage, CancellationToken cancellationToken);

    Task<WorkDecision> CompleteAsync(string id, LeaseProof proof, WorkTerminalKind kind, string? reason, CancellationToken cancellationToken);

    /// <summary>The market's own verdict, without a lease (consumer cancel, the workload supervisor).</summary>
    Task<WorkDecision> FinishAsync(string id, WorkTerminalKind kind, string? reason, CancellationToken cancellationToken);

    Task<WorkDecision> RequestAbandonAsync(string id, string requestedBy, string? reason, CancellationToken cancellationToken);

    Task<WorkDecision> RevokeAsync(string id, long expectedFence, string reason, CancellationToken cancellationToken);

    /// <summary>One recovery pass over open items that may need it (at most <paramref name="limit"/> of them).</summary>
    Task<WorkSweepReport> SweepAsync(IReadOnlyCollection<DeathEvidence> deaths, int limit, CancellationToken cancellationToken);

    /// <summary>Closes or hands over everything <paramref name="owner"/> (any incarnation) holds or started.</summary>
    Task<OwnerDrainReport> DrainOwnerAsync(LeaseOwner owner, CancellationToken cancellationToken);

    Task<ObservedWork?> ObserveAsync(string id, CancellationToken cancellationToken);

    Task<IReadOnlyList<ObservedWork>> ListOpenAsync(string? kind, int limit, CancellationToken cancellationToken);

    Task<IReadOnlyList<WorkEvent>> HistoryAsync(string id, CancellationToken cancellationToken);
}
