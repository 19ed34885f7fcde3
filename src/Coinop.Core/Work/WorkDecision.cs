using System.Text.Json.Serialization;

namespace Coinop.Core.Work;

/// <summary>Why the kernel refused an operation. Refusals are normal answers (a race lost, a revenant), not errors.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<WorkRefusal>))]
public enum WorkRefusal
{
    [JsonStringEnumMemberName("not_found")] NotFound = 1,
    [JsonStringEnumMemberName("already_registered")] AlreadyRegistered,
    [JsonStringEnumMemberName("invalid")] Invalid,

    /// <summary>The item is terminal; nothing changes it any more.</summary>
    [JsonStringEnumMemberName("terminal")] Terminal,
    [JsonStringEnumMemberName("externally_owned")] ExternallyOwned,

    /// <summary>Owner-bound work that already started is never claimed again.</summary>
    [JsonStringEnumMemberName("already_started")] AlreadyStarted,
    [JsonStringEnumMemberName("abandon_requested")] AbandonRequested,
    [JsonStringEnumMemberName("deadline_passed")] DeadlinePassed,

    /// <summary>Another holder has a live lease (the decision's item names it).</summary>
    [JsonStringEnumMemberName("busy")] Busy,

    /// <summary>The fencing token is not the item's current one: the writer lost its lease (a revenant).</summary>
    [JsonStringEnumMemberName("stale_fence")] StaleFence,
    [JsonStringEnumMemberName("not_lease_holder")] NotLeaseHolder,
    [JsonStringEnumMemberName("lease_expired")] LeaseExpired,

    /// <summary>A grant needs a fence nobody ever held, i.e. one a revoke just produced.</summary>
    [JsonStringEnumMemberName("not_revoked")] NotRevoked,
}

/// <summary>The history entry a change appends (the store adds the item id, time and resulting fence).</summary>
/// <param name="Kind">One of <see cref="WorkEventKinds"/>.</param>
/// <param name="Writer">Who wrote it: a lease holder's owner id, <c>market</c>, <c>sweep</c> or <c>owner_drain</c>.</param>
public sealed record WorkTransition(string Kind, string Writer, LeaseOwner? Owner = null, string? Detail = null);

public static class WorkEventKinds
{
    public const string Registered = "registered";
    public const string Claimed = "claimed";
    public const string Granted = "granted";
    public const string Started = "started";
    public const string Progress = "progress";
    public const string Usage = "usage";
    public const string AbandonRequested = "abandon_requested";
    public const string Released = "released";
    public const string Revoked = "revoked";
    public const string Completed = "completed";
    public const string Failed = "failed";
    public const string Cancelled = "cancelled";
    public const string Abandoned = "abandoned";

    public static string For(WorkTerminalKind kind) => kind switch
    {
        WorkTerminalKind.Completed => Completed,
        WorkTerminalKind.Failed => Failed,
        WorkTerminalKind.Cancelled => Cancelled,
        _ => Abandoned,
    };
}

public static class WorkWriters
{
    public const string Market = "market";
    public const string Sweep = "sweep";
    public const string OwnerDrain = "owner_drain";
}

/// <summary>
/// The answer of a kernel operation: the item after it (or as it stands, on a refusal), whether it changed, the
/// history entry to append, or a typed refusal. Renewals change the item without a history entry.
/// </summary>
public sealed record WorkDecision(WorkItem? Item, bool Changed, WorkTransition? Transition, WorkRefusal? Refusal)
{
    public bool Accepted => Refusal is null;

    public static WorkDecision Change(WorkItem next, WorkTransition? transition) => new(next, true, transition, null);

    public static WorkDecision Unchanged(WorkItem item) => new(item, false, null, null);

    public static WorkDecision Refuse(WorkItem? item, WorkRefusal refusal) => new(item, false, null, refusal);
}
