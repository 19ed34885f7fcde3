using System.Text.Json.Serialization;

namespace Coinop.Core.Work;

/// <summary>
/// How a unit of work may be recovered when its holder goes away. Declared at registration: there is deliberately
/// no default member (0 is not a value), because guessing wrong either re-runs something that must run once or
/// strands something that could simply run again.
/// </summary>
[JsonConverter(typeof(JsonStringEnumConverter<RecoveryDisposition>))]
public enum RecoveryDisposition
{
    /// <summary>Idempotent or journaled: another owner may run it again after the holder's lease lapses.</summary>
    [JsonStringEnumMemberName("rerunnable")] Rerunnable = 1,

    /// <summary>Claimable by anyone until it starts; once started it is never run again, only completed or abandoned.</summary>
    [JsonStringEnumMemberName("owner_bound")] OwnerBound = 2,

    /// <summary>Run by something outside the market: never claimed, closed by its owner or a reconciled abandon request.</summary>
    [JsonStringEnumMemberName("externally_owned")] ExternallyOwned = 3,
}

/// <summary>The kinds of work the market registers (free text in the store; these are the ones it uses).</summary>
public static class WorkKinds
{
    public const string InferenceJob = "inference_job";
    public const string Workload = "workload";

    /// <summary>A market node's duty: a singleton or one partition of background work, held by one node at a time.</summary>
    public const string NodeDuty = "node_duty";
}

/// <summary>
/// Who holds a lease: a stable owner (a provider id) and one incarnation of it (one run of its agent process).
/// Two values are the same holder only when both parts match; a restarted agent is a new incarnation.
/// </summary>
public sealed record LeaseOwner(string OwnerId, string IncarnationId)
{
    public override string ToString() => $"{OwnerId}/{IncarnationId}";
}

/// <summary>A claim on a work item: valid while <c>now &lt; ExpiresAt</c> and only at its fencing token.</summary>
public sealed record WorkLease(LeaseOwner Owner, string Token, long Fence, DateTimeOffset ClaimedAt, DateTimeOffset ExpiresAt)
{
    public bool IsLiveAt(DateTimeOffset now) => now < ExpiresAt;

    public LeaseProof Proof => new(Owner, Token, Fence);
}

/// <summary>What a lease holder presents with every write: who it is, its lease token and its fencing token.</summary>
public sealed record LeaseProof(LeaseOwner Owner, string Token, long Fence);

/// <summary>The first-writer-wins fact that execution started, and by whom.</summary>
public sealed record WorkStarted(LeaseOwner Owner, DateTimeOffset At);

/// <summary>A durable, non-terminal request (consumer or operator) to give up on the work.</summary>
public sealed record AbandonRequest(string RequestedBy, DateTimeOffset At, string? Reason);

[JsonConverter(typeof(JsonStringEnumConverter<WorkTerminalKind>))]
public enum WorkTerminalKind
{
    [JsonStringEnumMemberName("completed")] Completed = 1,
    [JsonStringEnumMemberName("failed")] Failed = 2,
    [JsonStringEnumMemberName("cancelled")] Cancelled = 3,
    [JsonStringEnumMemberName("abandoned")] Abandoned = 4,
}

/// <summary>Who terminalised abandoned work.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<AbandonWriter>))]
public enum AbandonWriter
{
    /// <summary>The owner itself, closing gracefully (provider SIGTERM or drain).</summary>
    [JsonStringEnumMemberName("owner_drain")] OwnerDrain = 1,

    /// <summary>The sweep, on positive evidence that the owner is dead.</summary>
    [JsonStringEnumMemberName("sweep")] Sweep = 2,

    /// <summary>The sweep, reconciling an abandon request once the holder's lease had lapsed.</summary>
    [JsonStringEnumMemberName("reconciled_request")] ReconciledRequest = 3,
}

/// <summary>Why work was abandoned: the writer, the owner it was taken from (if any) and the evidence.</summary>
public sealed record AbandonEvidence(AbandonWriter Writer, LeaseOwner? Owner, string Evidence);

/// <summary>The final state of a work item. Once written it is never overwritten.</summary>
public sealed record WorkTerminal(WorkTerminalKind Kind, DateTimeOffset At, string? Reason, AbandonEvidence? Abandon = null);

/// <summary>Positive evidence that one owner incarnation is dead (its agent restarted, its host rebooted...).</summary>
public sealed record DeathEvidence(LeaseOwner Owner, string Evidence);

/// <summary>What a caller asks to register.</summary>
public sealed record WorkRegistration(string Id, string Kind, RecoveryDisposition Disposition, DateTimeOffset? Deadline = null);

/// <summary>
/// One unit of work as the kernel sees it. <see cref="Fence"/> only grows; a lease-less item's fence was never
/// handed to anyone (every step that drops a lease without terminalising also bumps the fence), which is what
/// lets <see cref="WorkKernel.Grant"/> hand it to a named successor.
/// </summary>
public sealed record WorkItem(
    string Id,
    string Kind,
    RecoveryDisposition Disposition,
    long Fence,
    WorkLease? Lease,
    WorkStarted? Started,
    DateTimeOffset? Deadline,
    AbandonRequest? AbandonRequest,
    WorkTerminal? Terminal,
    string? Progress,
    DateTimeOffset CreatedAt)
{
    public bool IsTerminal => Terminal is not null;
}

/// <summary>
/// The read-side view of an item at one instant: who holds it, until when, whether that lease has lapsed and
/// whether an abandon request waits. A lapsed lease is information, not a verdict: elapsed time alone never
/// terminalises work.
/// </summary>
public sealed record ObservedWork(
    WorkItem Item,
    LeaseOwner? Holder,
    DateTimeOffset? LeaseExpiresAt,
    bool LeaseLapsed,
    AbandonRequest? PendingAbandon);
