using Coinop.Core.Pricing;
using Coinop.Core.Protocol;
using Microsoft.AspNetCore.Http;

namespace Coinop.Market.Inference;

/// <summary>What billing is told before a job is dispatched.</summary>
/// <param name="Http">The consumer's request (payment headers such as <c>X-Cashu</c> live there).</param>
/// <param name="ReservationMsat">
/// What the job may cost at the chosen provider's offer (<see cref="InferenceReservation"/>): the input
/// estimate and the output limit at that offer's price, within the operator's bounds.
/// </param>
public sealed record BillingRequest(
    Guid JobId,
    HttpRequest Http,
    string Model,
    long ReservationMsat);

/// <summary>Billing's answer before dispatch: go ahead (with state to settle later), or refuse with an error.</summary>
public sealed record BillingReservation(
    bool Accepted,
    object? State = null,
    ApiError? Refusal = null,
    IReadOnlyList<KeyValuePair<string, string>>? RefusalHeaders = null)
{
    public static BillingReservation Free { get; } = new(true);

    /// <summary>
    /// Nothing is held (a free market, a free offer): settling and releasing touch no store, so the pipeline may settle
    /// on the thread that received the result instead of handing it over to another.
    /// </summary>
    public bool HoldsNothing => Accepted && State is null;

    public static BillingReservation Refuse(ApiError error, IReadOnlyList<KeyValuePair<string, string>>? headers = null) =>
        new(false, null, error, headers);
}

/// <summary>What a job actually consumed, and who served it at which price.</summary>
/// <param name="LinkEpoch">
/// The epoch of the provider link the result came over (0: not checked). Billing refuses a result whose link another node
/// has taken over since (<see cref="ProviderLinkRevokedException"/>): a revoked link writes no job results.
/// </param>
public sealed record BillingUsage(TokenUsage Usage, string ProviderId, ModelPrice Price, long LinkEpoch = 0);

/// <summary>The provider linked again (to this or another node) after the result's link: the result does not count.</summary>
public sealed class ProviderLinkRevokedException(string providerId, long epoch)
    : Exception($"the link of provider {providerId} at epoch {epoch} was taken over; its results are refused")
{
    public string ProviderId { get; } = providerId;

    public long Epoch { get; } = epoch;
}

/// <summary>
/// Billing's answer at completion: headers for a non-streaming response (set before its body starts), a
/// trailer line for a stream (sent as an SSE comment before its end, e.g. <c>x-cashu &lt;token&gt;</c>), and
/// what the job cost (null when free).
/// </summary>
public sealed record BillingSettlement(
    IReadOnlyList<KeyValuePair<string, string>> Headers,
    string? StreamTrailer,
    long? CostMsat)
{
    public static BillingSettlement Free { get; } = new([], null, null);
}

/// <summary>
/// The payment seam of the inference pipeline: reserve before dispatch, settle on completion, release when the
/// job fails (charging what was delivered, if output reached the consumer). Implementations must make
/// reserve/settle/release exactly-once per job: the pipeline calls exactly one of settle or release after an
/// accepted reservation.
/// </summary>
public interface IInferenceBilling
{
    /// <summary>
    /// What the consumer's payment is known to cover before anything is taken (a token's face value), or null when
    /// unknown or unbounded. The router prefers providers whose reservation it covers.
    /// </summary>
    long? BudgetMsat(HttpRequest http);

    ValueTask<BillingReservation> ReserveAsync(BillingRequest request, CancellationToken cancellationToken);

    /// <summary>
    /// Re-reserves an accepted reservation for a retry on a provider whose offer reserves <paramref name="reservationMsat"/>:
    /// the most the job may now cost. False when the payment cannot cover it (that provider is skipped); the reservation
    /// is unchanged then.
    /// </summary>
    ValueTask<bool> ResizeAsync(BillingReservation reservation, long reservationMsat, CancellationToken cancellationToken);

    ValueTask<BillingSettlement> SettleAsync(BillingReservation reservation, BillingUsage usage, CancellationToken cancellationToken);

    /// <param name="delivered">
    /// What reached the consumer before the job broke (the input estimate and the output tokens relayed, from the provider
    /// that produced them, at its price), or null when nothing did.
    /// </param>
    ValueTask ReleaseAsync(BillingReservation reservation, BillingUsage? delivered, CancellationToken cancellationToken);
}

/// <summary>Billing of a market started with <c>--free</c>: everything is accepted and nothing is charged.</summary>
public sealed class FreeInferenceBilling : IInferenceBilling
{
    public long? BudgetMsat(HttpRequest http) => null;

    public ValueTask<bool> ResizeAsync(BillingReservation reservation, long reservationMsat, CancellationToken cancellationToken) => ValueTask.FromResult(true);

    public ValueTask<BillingReservation> ReserveAsync(BillingRequest request, CancellationToken cancellationToken) =>
        ValueTask.FromResult(BillingReservation.Free);

    public ValueTask<BillingSettlement> SettleAsync(BillingReservation reservation, BillingUsage usage, CancellationToken cancellationToken) =>
        ValueTask.FromResult(BillingSettlement.Free);

    public ValueTask ReleaseAsync(BillingReservation reservation, BillingUsage? delivered, CancellationToken cancellationToken) => ValueTask.CompletedTask;
}
