using System.Text.Json.Serialization;

namespace Coinop.Core.Workloads;

/// <summary>Where a workload is in its life. Completed, failed and cancelled are terminal.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<WorkloadState>))]
public enum WorkloadState
{
    /// <summary>The first copy was started; waiting for its first heartbeat.</summary>
    [JsonStringEnumMemberName("provisioning")] Provisioning = 1,

    /// <summary>The copy of the current epoch heartbeats.</summary>
    [JsonStringEnumMemberName("live")] Live,

    /// <summary>The copy went silent for suspect-after; it may come back.</summary>
    [JsonStringEnumMemberName("suspect")] Suspect,

    /// <summary>The copy was silent for evict-after (or reported lost); its epoch is being revoked.</summary>
    [JsonStringEnumMemberName("evicted")] Evicted,

    /// <summary>A new copy is being brought up: a promoted standby or a fresh respawn.</summary>
    [JsonStringEnumMemberName("respawning")] Respawning,

    [JsonStringEnumMemberName("failed")] Failed,
    [JsonStringEnumMemberName("completed")] Completed,
    [JsonStringEnumMemberName("cancelled")] Cancelled,
}

/// <summary>One step of a workload's history: the state it entered, on which provider, when.</summary>
public sealed record WorkloadHistoryEntry(WorkloadState State, string? Provider, DateTimeOffset At);

/// <summary>A standby provider holding reserved capacity, and when the market last heard from it.</summary>
public sealed record WorkloadStandby(string Provider, DateTimeOffset LastHeard);

/// <summary>The copy whose epoch is being revoked, and why; nothing new starts until the revoke is confirmed.</summary>
/// <param name="Crashed">The workload's own process failed (counts against the restart policy even when a standby takes over).</param>
public sealed record PendingRevoke(string Provider, long Epoch, bool Crashed);

/// <summary>Why a workload reached its terminal state.</summary>
public static class WorkloadReasons
{
    public const string Exited = "exited";
    public const string LeaseExpired = "lease_expired";
    public const string Cancelled = "cancelled";
    public const string Evicted = "evicted";
    public const string Lost = "lost";
    public const string Crashed = "crashed";
    public const string RestartsExhausted = "restarts_exhausted";
    public const string NoProvider = "no_provider";
}

/// <summary>
/// A workload as the market supervises it. The copy at (<see cref="Provider"/>, <see cref="Epoch"/>) is the only one
/// allowed to run, and only while nothing is being revoked; <see cref="Epoch"/> equals the fencing token of the
/// workload's kernel work item.
/// </summary>
public sealed record Workload(
    string Id,
    WorkloadSpec Spec,
    WorkloadState State,
    DateTimeOffset Since,
    string? Reason,
    string? Provider,
    long Epoch,
    PendingRevoke? Revoking,
    DateTimeOffset LastContact,
    IReadOnlyList<WorkloadStandby> Standbys,
    int Attempts,
    DateTimeOffset PaidUntil,
    string? Checkpoint,
    IReadOnlyList<WorkloadHistoryEntry> History,
    DateTimeOffset CreatedAt)
{
    public bool IsTerminal => State is WorkloadState.Completed or WorkloadState.Failed or WorkloadState.Cancelled;

    /// <summary>Whether <paramref name="provider"/> may run (or keep running) a copy at <paramref name="epoch"/> now.</summary>
    public bool AllowedToRun(string provider, long epoch) =>
        !IsTerminal && Revoking is null && Provider == provider && Epoch == epoch;
}
