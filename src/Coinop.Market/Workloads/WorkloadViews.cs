using System.Text.Json.Serialization;
using Coinop.Core.Workloads;
using Coinop.Storage.Workloads;

namespace Coinop.Market.Workloads;

/// <summary>The body of <c>POST /api/workloads</c>. Only <c>command</c> is required.</summary>
/// <param name="Cpu">CPU cores (default 1).</param>
/// <param name="MemoryMb">Memory in MiB (default 256).</param>
/// <param name="DurationSeconds">Paid duration in seconds (default 3600).</param>
/// <param name="Restart"><c>never</c> (default) or <c>on-failure:N</c>.</param>
/// <param name="Provider">Run the primary on this provider (id or name).</param>
/// <param name="SealTo">The consumer's X25519 public key (base64); access receipts are sealed to it. Required with a port.</param>
/// <param name="SealedKeys">The checkpoint key sealed to each provider that may run the workload (provider id → base64). Required when checkpointed.</param>
/// <param name="Id">The workload id, when the consumer chose it (a checkpoint key is sealed for one workload id); a fresh one otherwise.</param>
/// <param name="Isolation">What the provider must isolate copies with: <c>sandbox</c> (default: bubblewrap or docker) or <c>none</c> (any provider).</param>
public sealed record SubmitWorkloadRequest(
    string? Command,
    IReadOnlyList<string>? Args,
    double? Cpu,
    long? MemoryMb,
    double? DurationSeconds,
    int? Port,
    string? Restart,
    int? Standbys,
    bool? Checkpointed,
    string? Provider,
    string? SealTo,
    IReadOnlyDictionary<string, string>? SealedKeys,
    string? Id = null,
    string? Isolation = null);

/// <summary>The body of <c>POST /api/workloads/{id}/topup</c> (on a paid market it may be empty when an <c>X-Cashu</c> token pays).</summary>
public sealed record TopUpRequest(double? DurationSeconds);

/// <summary>A workload as <c>GET /api/workloads/{id}</c> shows it to its owner.</summary>
/// <param name="Provider">The primary's provider id, or null while none runs it.</param>
/// <param name="Epoch">The fencing token of the copy allowed to run.</param>
/// <param name="Usage">The providers' signed usage records: base64 of the exact signed bytes, the Ed25519 signature and the raw public key.</param>
/// <param name="PaidMsat">What the consumer paid (submit and top-ups); 0 on a free market.</param>
/// <param name="SpentMsat">What the time consumed so far was charged (settled up to <paramref name="SettledUntil"/>); null when nothing was paid.</param>
/// <param name="Refund">What came back when the workload ended; its token is shown only to the payer.</param>
/// <param name="OwnerKey">In the submit answer only, and only when the market made the owner key (the request sent none):
/// the one time the market has it in the clear. Keep it: every later request about the workload needs it.</param>
public sealed record WorkloadView(
    string Id,
    WorkloadState State,
    string? Reason,
    string? Provider,
    IReadOnlyList<string> Standbys,
    long Epoch,
    int Attempts,
    IReadOnlyList<HistoryView> History,
    IReadOnlyList<SignedUsageRecord> Usage,
    WorkloadSpecView Spec,
    DateTimeOffset CreatedAt,
    DateTimeOffset PaidUntil,
    decimal RateMsatPerSecond,
    long PaidMsat,
    long? SpentMsat,
    DateTimeOffset? SettledUntil,
    CheckpointView? Checkpoint,
    AccessView? Access,
    RefundView? Refund,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? OwnerKey = null);

public sealed record HistoryView(WorkloadState State, string? Provider, DateTimeOffset At);

public sealed record WorkloadSpecView(
    string Command,
    IReadOnlyList<string> Args,
    double Cpu,
    long MemoryMb,
    double DurationSeconds,
    int? Port,
    string Restart,
    int Standbys,
    bool Checkpointed,
    string Replication,
    WorkloadIsolation Isolation = WorkloadIsolation.Sandbox);

public sealed record CheckpointView(string Id, long Epoch, string Provider, long Size, DateTimeOffset At);

/// <summary>The newest copy's access receipt, sealed to the consumer's key (the market cannot read it).</summary>
public sealed record AccessView(long Epoch, string Provider, string Sealed, DateTimeOffset At);

/// <summary>A finished workload's refund: whole sats of what was paid and not consumed, as a <c>cashuB</c> token (none when under a sat).</summary>
public sealed record RefundView(long RefundMsat, string? Token);

/// <summary>One line of <c>GET /api/workloads</c>.</summary>
public sealed record WorkloadSummary(string Id, WorkloadState State, string? Provider, long Epoch, int Attempts, string Command, DateTimeOffset CreatedAt, DateTimeOffset PaidUntil);

/// <summary>A piece of a copy's output: <c>data</c> is base64 of the exact bytes.</summary>
public sealed record LogEntryView(long Seq, long Epoch, string Stream, DateTimeOffset At, string Data);

public sealed record LogsView(IReadOnlyList<LogEntryView> Entries, long Next, WorkloadState State);

/// <summary>The last event of a followed log: how the workload ended.</summary>
public sealed record LogEndView(WorkloadState State, string? Reason);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, UseStringEnumConverter = true)]
[JsonSerializable(typeof(SubmitWorkloadRequest))]
[JsonSerializable(typeof(TopUpRequest))]
[JsonSerializable(typeof(WorkloadView))]
[JsonSerializable(typeof(WorkloadSummary[]))]
[JsonSerializable(typeof(LogsView))]
[JsonSerializable(typeof(LogEntryView))]
[JsonSerializable(typeof(LogEndView))]
[JsonSerializable(typeof(AccessView))]
[JsonSerializable(typeof(RefundView))]
public sealed partial class WorkloadJsonContext : JsonSerializerContext;

/// <summary>Builds the views from the stores.</summary>
public static class WorkloadViews
{
    public static WorkloadView View(StoredWorkload stored, IReadOnlyList<SignedUsageRecord> usage, CheckpointInfo? checkpoint, SealedReceipt? receipt,
        WorkloadMoney? money, bool payer)
    {
        var w = stored.Workload;
        var spec = w.Spec;
        return new WorkloadView(
            w.Id, w.State, w.Reason, w.Provider, [.. w.Standbys.Select(s => s.Provider)], w.Epoch, w.Attempts,
            [.. w.History.Select(h => new HistoryView(h.State, h.Provider, h.At))],
            usage,
            new WorkloadSpecView(spec.Command, spec.Args, spec.CpuCores, spec.MemoryMb, spec.Duration.TotalSeconds, spec.Port, spec.Restart.ToString(),
                spec.Standbys, spec.Checkpointed, spec.Replication, spec.Isolation),
            w.CreatedAt, w.PaidUntil, stored.Terms.RateMsatPerSecond, stored.Terms.PaidMsat, money?.ChargedMsat, money?.SettledUntil,
            checkpoint is null ? null : new CheckpointView(checkpoint.Id, checkpoint.Epoch, checkpoint.ProviderId, checkpoint.Size, checkpoint.CreatedAt),
            receipt is null ? null : new AccessView(receipt.Epoch, receipt.ProviderId, receipt.Sealed, receipt.CreatedAt),
            money?.Refund is { } refund ? new RefundView(refund.Msat, payer ? refund.Token : null) : null);
    }

    public static WorkloadSummary Summary(StoredWorkload stored)
    {
        var w = stored.Workload;
        return new WorkloadSummary(w.Id, w.State, w.Provider, w.Epoch, w.Attempts, string.Join(' ', [w.Spec.Command, .. w.Spec.Args]), w.CreatedAt, w.PaidUntil);
    }

    public static LogEntryView Entry(WorkloadLogEntry e) => new(e.Seq, e.Epoch, e.Stream, e.At, Convert.ToBase64String(e.Data));
}
