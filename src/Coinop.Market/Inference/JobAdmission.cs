using System.Globalization;
using Coinop.Market.Gateway;
using Microsoft.AspNetCore.Http;

namespace Coinop.Market.Inference;

/// <summary>A job admitted to run: its first provider (a slot taken) and the reservation at that provider's offer; or why not.</summary>
public sealed record Admission(RoutePick Pick, BillingReservation? Reservation, ApiError? Refusal = null, IReadOnlyList<KeyValuePair<string, string>>? Headers = null)
{
    public static Admission Refuse(ApiError error, IReadOnlyList<KeyValuePair<string, string>>? headers = null) => new(default, null, error, headers);
}

/// <summary>
/// Everything before a job runs, and before each retry: whether the market can serve the request at all (404, 400,
/// 503), a provider's slot — at once, or after waiting its turn in the <see cref="CapacityQueue"/> (429 when the queue
/// is full) — and the reservation at the chosen provider's offer (402 when the payment does not cover it). The order
/// matters for money: a request holds nothing while it waits, and a slot is given back when the payment is refused.
/// </summary>
public sealed class JobAdmission(ProviderRouter router, CapacityQueue capacity, IInferenceBilling billing, IRoutableProviders providers)
{
    /// <summary>
    /// Null when some provider can take the request now or once a slot frees; else the error to answer with. A model no
    /// provider offers is looked up again once the view of providers linked to other nodes caught up with this moment:
    /// a provider that linked elsewhere a moment ago (and that node's listings already show) is found, not refused.
    /// </summary>
    public ValueTask<ApiError?> CheckAsync(InferenceRequest request, RouteNeeds needs, CancellationToken cancellationToken)
    {
        var error = Check(request, needs, out var availability);
        return availability == RouteAvailability.NotOffered ? CheckAgainAsync(request, needs, error, cancellationToken) : ValueTask.FromResult(error);
    }

    private async ValueTask<ApiError?> CheckAgainAsync(InferenceRequest request, RouteNeeds needs, ApiError? error, CancellationToken cancellationToken) =>
        await providers.CatchUpAsync(cancellationToken) ? Check(request, needs, out _) : error;

    private ApiError? Check(InferenceRequest request, in RouteNeeds needs, out RouteAvailability availability)
    {
        availability = router.Check(needs);
        if (availability is RouteAvailability.Available or RouteAvailability.Busy)
        {
            return null;
        }

        if (needs.Offer.AnthropicNative && router.Check(needs with { Offer = needs.Offer with { AnthropicNative = false } }) != RouteAvailability.NotOffered)
        {
            return ApiError.InvalidBody($"{request.Anthropic?.NeedsNative ?? "content blocks other than text"} need a provider that serves the Anthropic API natively, and none offers model '{request.Model}'");
        }

        return availability switch
        {
            RouteAvailability.NotOffered => ApiError.ModelNotFound(request.Model),
            RouteAvailability.Unsuitable => ApiError.Unsuitable(request.Model, router.Unmet(needs) ?? "this request"),
            _ => ApiError.NoProvider(request.Model),
        };
    }

    /// <summary>
    /// The job's first provider and its reservation. Throws <see cref="OperationCanceledException"/> when
    /// <paramref name="waiting"/> fires while the request waits for a slot (deadline, consumer gone): nothing is held then.
    /// </summary>
    public async ValueTask<Admission> AdmitAsync(HttpRequest http, Guid jobId, RouteNeeds needs, string consumer, CancellationToken waiting)
    {
        var slot = await capacity.AcquireAsync(needs, [], consumer, waiting);
        switch (slot.Outcome)
        {
            case SlotOutcome.QueueFull:
                var retryAfter = capacity.RetryAfterSeconds;
                return Admission.Refuse(ApiError.QueueFull(needs.Model, retryAfter), [new("Retry-After", retryAfter.ToString(CultureInfo.InvariantCulture))]);
            case SlotOutcome.Unavailable:
                return Admission.Refuse(ApiError.NoProvider(needs.Model));
        }

        // The job reserves what it may cost at the chosen provider's offer, and nothing another provider claims.
        var first = slot.Pick;
        BillingReservation reservation;
        try
        {
            reservation = await billing.ReserveAsync(new BillingRequest(jobId, http, needs.Model, first.Reservation.Msat), http.HttpContext.RequestAborted);
        }
        catch
        {
            capacity.Release(first.Provider);
            throw;
        }

        if (!reservation.Accepted)
        {
            capacity.Release(first.Provider);
            return Admission.Refuse(reservation.Refusal ?? new ApiError(402, "payment_required", "payment_required", "payment required"), reservation.RefusalHeaders);
        }

        return new Admission(first, reservation);
    }

    /// <summary>
    /// The provider of a retry (waiting its turn like any request when all are busy): the job re-reserves for its offer,
    /// and a dearer one the payment cannot cover is skipped. Null when no provider is left. Throws
    /// <see cref="OperationCanceledException"/> when <paramref name="waiting"/> fires while it waits; the reservation
    /// stays with the job, to be released by it.
    /// </summary>
    public async ValueTask<RoutePick?> RetryAsync(BillingReservation reservation, RouteNeeds needs, List<IRoutableProvider> tried, string consumer,
        CancellationToken waiting)
    {
        while (true)
        {
            var slot = await capacity.AcquireAsync(needs, tried, consumer, waiting);
            if (slot.Outcome != SlotOutcome.Acquired)
            {
                return null;
            }

            var pick = slot.Pick;
            bool covered;
            try
            {
                covered = await billing.ResizeAsync(reservation, pick.Reservation.Msat, CancellationToken.None);
            }
            catch
            {
                capacity.Release(pick.Provider);
                throw;
            }

            if (covered)
            {
                return pick;
            }

            tried.Add(pick.Provider);
            capacity.Release(pick.Provider);
        }
    }

    /// <summary>Gives a provider's slot back (and to whoever waits for it).</summary>
    public void Release(IRoutableProvider provider) => capacity.Release(provider);
}
