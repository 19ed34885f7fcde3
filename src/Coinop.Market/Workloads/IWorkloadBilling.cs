using Coinop.Core.Pricing;
using Coinop.Market.Inference;
using Microsoft.AspNetCore.Http;

namespace Coinop.Market.Workloads;

/// <summary>What billing is asked to pay for: the consumer's request (its payment headers), the quote, the time wanted.</summary>
/// <param name="Http">The consumer's request (payment headers such as <c>X-Cashu</c> live there).</param>
/// <param name="Quote">Per-second price of the workload on its primary plus its standbys' reserved capacity.</param>
/// <param name="Requested">The duration the consumer asked for (<c>--duration</c>, or a top-up's).</param>
public sealed record WorkloadBillingRequest(string WorkloadId, HttpRequest Http, WorkloadQuote Quote, TimeSpan Requested);

/// <summary>Billing's answer: the paid time (the lease) and what was paid for it, or a refusal for the consumer.</summary>
public sealed record WorkloadPayment(bool Accepted, TimeSpan Lease, long PaidMsat, ApiError? Refusal = null, object? State = null)
{
    public static WorkloadPayment Refuse(ApiError error) => new(false, TimeSpan.Zero, 0, error);
}

/// <summary>Unused paid time given back to the consumer: its value and how (say, an ecash token), for the workload's view.</summary>
public sealed record WorkloadRefund(long Msat, string? Token);

/// <summary>
/// The payment seam of workloads. <see cref="AuthorizeAsync"/> at submit buys the lease (lease = amount ÷ rate),
/// <see cref="TopUpAsync"/> extends it, <see cref="ReleaseAsync"/> gives an accepted payment back whole when the
/// workload could not be started or extended after all, and <see cref="RefundAsync"/> returns the unused time when a
/// workload ends early (cancel, failure). A lease that runs out is stopped by the supervisor; nothing is refunded then.
/// The supervisor calls release or refund at most once per payment and refund at most once per workload.
/// </summary>
public interface IWorkloadBilling
{
    ValueTask<WorkloadPayment> AuthorizeAsync(WorkloadBillingRequest request, CancellationToken cancellationToken);

    ValueTask<WorkloadPayment> TopUpAsync(WorkloadBillingRequest request, CancellationToken cancellationToken);

    ValueTask ReleaseAsync(string workloadId, WorkloadPayment payment, CancellationToken cancellationToken);

    /// <returns>The refund to show the consumer, or null when there is nothing to give back.</returns>
    ValueTask<WorkloadRefund?> RefundAsync(string workloadId, WorkloadQuote quote, TimeSpan unused, CancellationToken cancellationToken);
}

/// <summary>
/// Billing of a market started with <c>--free</c> (and, until paid billing plugs in, of every market): the lease is
/// the duration asked for, top-ups add what they ask, and nothing is charged or refunded.
/// </summary>
public sealed class FreeWorkloadBilling : IWorkloadBilling
{
    public ValueTask<WorkloadPayment> AuthorizeAsync(WorkloadBillingRequest request, CancellationToken cancellationToken) =>
        ValueTask.FromResult(new WorkloadPayment(true, request.Requested, 0));

    public ValueTask<WorkloadPayment> TopUpAsync(WorkloadBillingRequest request, CancellationToken cancellationToken) =>
        ValueTask.FromResult(new WorkloadPayment(true, request.Requested, 0));

    public ValueTask ReleaseAsync(string workloadId, WorkloadPayment payment, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public ValueTask<WorkloadRefund?> RefundAsync(string workloadId, WorkloadQuote quote, TimeSpan unused, CancellationToken cancellationToken) =>
        ValueTask.FromResult<WorkloadRefund?>(null);
}
