using System.Text.Json.Serialization;
using Coinop.Core.Workloads;

namespace Coinop.Market.Web;

/// <summary>The ledger's totals, as <c>GET /api/ledger/summary</c> shows them (msat).</summary>
public sealed record LedgerTotalsView(
    long ReceivedMsat,
    long SpentMsat,
    long RefundedMsat,
    long BalancesMsat,
    long HeldMsat,
    long ProviderEarnedMsat,
    long OwedMsat,
    long FeeMsat,
    long PaidOutMsat);

/// <summary>One of the ledger's equations with both sides, so the page shows it checked rather than asserted.</summary>
public sealed record EquationView(string Name, long LeftMsat, long RightMsat, bool Holds);

/// <summary><c>GET /api/admin/money</c>.</summary>
public sealed record MoneyView(
    LedgerTotalsView Summary,
    IReadOnlyList<EquationView> Equations,
    MoneySeriesView Series,
    IReadOnlyList<KeysetView> Keysets,
    IReadOnlyList<QuoteView> Quotes,
    IReadOnlyList<PayoutView> Payouts);

public sealed record MoneySeriesView(int BucketSeconds, IReadOnlyList<MoneyPointView> Points);

public sealed record MoneyPointView(DateTimeOffset At, long ReceivedMsat, long SpentMsat, long FeeMsat, long RefundedMsat, long PaidOutMsat);

/// <summary>A keyset's ecash in sat: issued, spent, in the market's change stock, and outstanding (held by others).</summary>
public sealed record KeysetView(string Id, string Unit, bool Active, ulong InputFeePpk, UInt128 IssuedSat, UInt128 SpentSat, UInt128 InStockSat, UInt128 OutstandingSat);

public sealed record QuoteView(string Kind, string Id, string State, ulong Amount, string Unit, DateTimeOffset CreatedAt, DateTimeOffset ExpiresAt);

public sealed record PayoutView(DateTimeOffset At, string ProviderId, long AmountMsat);

/// <summary>
/// <c>GET /api/admin/traffic</c>: jobs per bucket by model and outcome (only buckets with jobs; <c>buckets</c> lists every bucket of the
/// window), errors by code, queues, the slowest providers.
/// </summary>
public sealed record TrafficView(
    int WindowSeconds,
    int BucketSeconds,
    IReadOnlyList<DateTimeOffset> Buckets,
    IReadOnlyList<TrafficPointView> Series,
    IReadOnlyList<ErrorCountView> Errors,
    QueueView Queue,
    IReadOnlyList<SlowProviderView> Slowest);

public sealed record TrafficPointView(DateTimeOffset At, string Model, string Outcome, long Jobs, long OutputTokens);

public sealed record ErrorCountView(string Code, long Jobs);

/// <summary>Jobs in flight on this node's providers and what their backends still have queued.</summary>
public sealed record QueueView(int InFlight, int ProviderQueueDepth, int ProvidersBusy, int ProvidersConnected);

/// <summary>A provider's jobs in the window, slowest average time to first byte first; <c>p95_latency_ms</c> is live (null when not connected here).</summary>
public sealed record SlowProviderView(string ProviderId, string? Name, long Jobs, double AvgFirstByteMs, long MaxFirstByteMs, long Failed, double? P95LatencyMs);

/// <summary><c>GET /api/admin/providers</c>.</summary>
public sealed record AdminProvidersView(string Enrollment, IReadOnlyList<AdminProviderView> Providers, IReadOnlyList<EnrollmentCodeItem> Codes);

/// <summary>
/// A provider as the operator sees it. <c>link</c>: <c>online</c>, <c>busy</c>, <c>parked</c>, <c>draining</c>,
/// <c>connecting</c> (connected to this node); <c>elsewhere</c> (online at another node of this market); <c>offline</c>;
/// <c>revoked</c>.
/// </summary>
public sealed record AdminProviderView(
    string Id,
    string Name,
    string Link,
    bool ConnectedHere,
    string? Isolation,
    IReadOnlyList<string> Models,
    int InFlight,
    DateTimeOffset EnrolledAt,
    DateTimeOffset LastSeen,
    DateTimeOffset? ParkedUntil,
    DateTimeOffset? RevokedAt,
    string? RevokedReason,
    long EarnedMsat,
    long PaidOutMsat,
    long OwedMsat);

public sealed record EnrollmentCodeItem(string Code, int MaxUses, int Uses, DateTimeOffset CreatedAt, DateTimeOffset? ExpiresAt);

/// <summary>The body of <c>POST /api/admin/providers/{id}/park</c>: seconds to park for; 0 un-parks.</summary>
public sealed record ParkRequest(double? Seconds);

public sealed record ParkedView(string ProviderId, DateTimeOffset? ParkedUntil);

/// <summary>The body of <c>POST /api/admin/providers/{id}/revoke</c>.</summary>
public sealed record RevokeRequest(string? Reason);

public sealed record RevokedView(string ProviderId, DateTimeOffset RevokedAt, string Reason, bool Disconnected);

/// <summary>The body of <c>POST /api/admin/enrollment-codes</c>.</summary>
public sealed record EnrollmentCodeRequest(int? Uses, double? ValidForSeconds);

/// <summary>One line of <c>GET /api/admin/workloads</c>.</summary>
public sealed record AdminWorkloadView(
    string Id,
    WorkloadState State,
    string? Reason,
    string? Provider,
    IReadOnlyList<string> Standbys,
    long Epoch,
    int Attempts,
    string Command,
    DateTimeOffset CreatedAt,
    DateTimeOffset PaidUntil,
    IReadOnlyList<AdminHistoryView> History);

public sealed record AdminHistoryView(WorkloadState State, string? Provider, DateTimeOffset At);

/// <summary><c>GET /v1/balance/charges</c>: a balance and its newest movements (a request's reserve and settle netted into one).</summary>
public sealed record BalanceChargesView(long BalanceMsat, IReadOnlyList<BalanceChargeView> Charges);

/// <summary><c>kind</c>: <c>request</c> (negative: what it cost), <c>top_up</c>, <c>refund</c>, <c>change</c>, or the journal's event name.</summary>
public sealed record BalanceChargeView(DateTimeOffset At, string Kind, string Reference, long AmountMsat);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, UseStringEnumConverter = true,
    NumberHandling = JsonNumberHandling.Strict)]
[JsonSerializable(typeof(OverviewView))]
[JsonSerializable(typeof(MoneyView))]
[JsonSerializable(typeof(TrafficView))]
[JsonSerializable(typeof(AdminProvidersView))]
[JsonSerializable(typeof(ParkRequest))]
[JsonSerializable(typeof(ParkedView))]
[JsonSerializable(typeof(RevokeRequest))]
[JsonSerializable(typeof(RevokedView))]
[JsonSerializable(typeof(EnrollmentCodeRequest))]
[JsonSerializable(typeof(EnrollmentCodeItem))]
[JsonSerializable(typeof(AdminWorkloadView[]))]
[JsonSerializable(typeof(BalanceChargesView))]
public sealed partial class WebJsonContext : JsonSerializerContext;
