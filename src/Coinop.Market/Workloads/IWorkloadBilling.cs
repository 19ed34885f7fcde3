using Coinop.Core.Pricing;
using Coinop.Market.Inference;
using Coinop.Storage.Workloads;
using Microsoft.AspNetCore.Http;

namespace Coinop.Market.Workloads;

/// <summary>What billing is asked to pay for: the consumer's request (its payment headers), the quote, the time wanted.</summary>
/// <param name="Http">The consumer's request (payment headers such as <c>X-Cashu</c> live there).</param>
/// <param name="Quote">Per-second price of the workload on its primary plus its standbys' reserved capacity.</param>
/// <param name="Requested">The duration the consumer asked for (<c>--duration</c>, or a top-up's); null when a top-up names
/// none and its token's value decides.</param>
public sealed record WorkloadBillingRequest(string WorkloadId, HttpRequest Http, WorkloadQuote Quote, TimeSpan? Requested);

/// <summary>
/// Billing's answer: the paid time (the lease) and what was paid for it, or a refusal for the consumer (with headers,
/// e.g. a 402's payment request). <see cref="Commit"/>, when set, moves the payment to the workload inside the store
/// transaction that grants the lease, so the money and the lease it buys are written together or not at all.
/// </summary>
public sealed record WorkloadPayment(
    bool Accepted,
    TimeSpan Lease,
    long PaidMsat,
    ApiError? Refusal = null,
    IReadOnlyList<KeyValuePair<string, string>>? Headers = null,
    WorkloadSaveHook? Commit = null,
    object? State = null)
{
    public static WorkloadPayment Refuse(ApiError error, IReadOnlyList<KeyValuePair<string, string>>? headers = null) =>
        new(false, TimeSpan.Zero, 0, error, headers);
}

/// <summary>Unused paid money given back to the consumer when a workload ended: its value and the ecash token, if any.</summary>
public sealed record WorkloadRefund(long Msat, string? Token);

/// <summary>A workload's money as the consumer may see it: what was charged so far and, once it ended, the refund.</summary>
public sealed record WorkloadMoney(long ChargedMsat, DateTimeOffset SettledUntil, WorkloadRefund? Refund);

/// <summary>
/// The payment seam of workloads. <see cref="AuthorizeAsync"/> at submit buys the lease (lease = amount ÷ rate) and
/// <see cref="TopUpAsync"/> extends it; the payment's <see cref="WorkloadPayment.Commit"/> runs in the transaction that
/// grants the lease, and <see cref="FinishAsync"/> then tells billing whether it did (a payment not applied is given
/// back whole). While the workload runs, the supervisor <see cref="SettleAsync"/>s the time consumed, per provider at its
/// rate — periodically and before the set of serving providers changes — and <see cref="CloseAsync"/>s it once it ends:
/// the rest is refunded. <see cref="RecoverAsync"/> closes what a market that died left open.
/// </summary>
public interface IWorkloadBilling
{
    ValueTask<WorkloadPayment> AuthorizeAsync(WorkloadBillingRequest request, CancellationToken cancellationToken);

    ValueTask<WorkloadPayment> TopUpAsync(WorkloadBillingRequest request, CancellationToken cancellationToken);

    /// <summary>
    /// After the supervisor answered: an <paramref name="applied"/> payment is done with; one that was not is given back
    /// whole. Returns ecash for the consumer's response (a token payer still waiting gets its payment back as change).
    /// </summary>
    ValueTask<string?> FinishAsync(WorkloadPayment payment, bool applied, CancellationToken cancellationToken);

    /// <summary>
    /// Charges the time from the last settlement until <paramref name="until"/> to the providers in
    /// <paramref name="serving"/>; returns how far the workload is settled now (null when it has no account).
    /// </summary>
    ValueTask<DateTimeOffset?> SettleAsync(string workloadId, WorkloadQuote quote, IReadOnlyList<ProviderRate> serving, DateTimeOffset until,
        CancellationToken cancellationToken);

    /// <summary>Settles up to <paramref name="end"/> and refunds the rest, once; returns the refund (the same one when called again).</summary>
    ValueTask<WorkloadRefund?> CloseAsync(string workloadId, WorkloadQuote quote, IReadOnlyList<ProviderRate> serving, DateTimeOffset end,
        CancellationToken cancellationToken);

    /// <summary>Closes the accounts of workloads that finished while their account stayed open (the market died in between).</summary>
    ValueTask RecoverAsync(CancellationToken cancellationToken);

    /// <summary>What the workload was charged and refunded (null on a free market or for a workload paid nothing).</summary>
    ValueTask<WorkloadMoney?> MoneyAsync(string workloadId, CancellationToken cancellationToken);

    /// <summary>
    /// Whether this request may act for the workload's payer (cancel it, collect its refund): null when it may, or
    /// why not. A workload nobody paid for (free) is anyone's.
    /// </summary>
    ValueTask<ApiError?> CheckPayerAsync(string workloadId, HttpRequest http, CancellationToken cancellationToken);
}

/// <summary>
/// Billing of a market started with <c>--free</c>: the lease is the duration asked for, top-ups add what they ask,
/// and nothing is charged or refunded.
/// </summary>
public sealed class FreeWorkloadBilling : IWorkloadBilling
{
    public ValueTask<WorkloadPayment> AuthorizeAsync(WorkloadBillingRequest request, CancellationToken cancellationToken) =>
        ValueTask.FromResult(Free(request));

    public ValueTask<WorkloadPayment> TopUpAsync(WorkloadBillingRequest request, CancellationToken cancellationToken) =>
        ValueTask.FromResult(Free(request));

    public ValueTask<string?> FinishAsync(WorkloadPayment payment, bool applied, CancellationToken cancellationToken) => ValueTask.FromResult<string?>(null);

    public ValueTask<DateTimeOffset?> SettleAsync(string workloadId, WorkloadQuote quote, IReadOnlyList<ProviderRate> serving, DateTimeOffset until,
        CancellationToken cancellationToken) => ValueTask.FromResult<DateTimeOffset?>(null);

    public ValueTask<WorkloadRefund?> CloseAsync(string workloadId, WorkloadQuote quote, IReadOnlyList<ProviderRate> serving, DateTimeOffset end,
        CancellationToken cancellationToken) => ValueTask.FromResult<WorkloadRefund?>(null);

    public ValueTask RecoverAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public ValueTask<WorkloadMoney?> MoneyAsync(string workloadId, CancellationToken cancellationToken) => ValueTask.FromResult<WorkloadMoney?>(null);

    public ValueTask<ApiError?> CheckPayerAsync(string workloadId, HttpRequest http, CancellationToken cancellationToken) => ValueTask.FromResult<ApiError?>(null);

    /// <summary>The time asked for, for nothing; a top-up must say how much time it adds.</summary>
    public static WorkloadPayment Free(WorkloadBillingRequest request) => request.Requested is { } requested
        ? new WorkloadPayment(true, requested, 0)
        : WorkloadPayment.Refuse(ApiError.InvalidBody("say how much time to add: {\"duration_seconds\": N}"));
}
