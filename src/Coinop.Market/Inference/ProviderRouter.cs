using System.Buffers;
using Coinop.Core.Pricing;
using Coinop.Core.Protocol;
using Coinop.Core.Routing;
using Coinop.Market.Gateway;

namespace Coinop.Market.Inference;

/// <summary>What the market can do for a model right now.</summary>
public enum RouteAvailability
{
    /// <summary>No connected provider offers the model (answered 404).</summary>
    NotOffered,

    /// <summary>Offered, but no offer meets what the request needs (<see cref="OfferNeeds"/>).</summary>
    Unsuitable,

    /// <summary>Offered, but every suitable provider is parked, draining or outside the price bounds (503).</summary>
    NoneAvailable,

    /// <summary>Suitable providers could take the job, but every one is at its concurrency limit: the request may queue.</summary>
    Busy,

    Available,
}

/// <summary>
/// What a request needs of a provider: the model, the offer's features, the consumer's price ceiling, what the job
/// reserves (<see cref="Basis"/>) and, when the payment is known to be worth only so much, <see cref="BudgetMsat"/>:
/// offers whose reservation it does not cover are skipped while any other can take the job.
/// </summary>
public readonly record struct RouteNeeds(string Model, OfferNeeds Offer, ModelPrice? Ceiling, ReservationBasis Basis, long? BudgetMsat = null);

/// <summary>A provider chosen for a job (one of its slots taken), its offer and what the job reserves with it.</summary>
public readonly record struct RoutePick(IRoutableProvider Provider, ModelOffer Offer, Reservation Reservation);

/// <summary>
/// Picks a provider for a job: among connected providers that accept jobs, serve the model with an offer that meets
/// the request's needs, are not parked, are under their concurrency limit, and whose price is within the operator's
/// <c>--max-price</c> and the consumer's ceiling, power-of-two-choices by <see cref="PowerOfTwoChoices.Score"/>
/// (peak-EWMA latency × load × price relative to the cheapest). What the job reserves is computed against the chosen
/// offer alone (<see cref="InferenceReservation"/>). No LINQ, no locks held: the providers come as an immutable snapshot,
/// indexed by model (<see cref="OfferIndex"/>). A model with many providers is not scanned: the two choices are drawn at
/// random from its list until two can take the job (<see cref="SampleLimit"/> draws, then a full scan of the list), and the
/// price weight is relative to the model's cheapest offer, so a decision costs the same with 10 providers or 10,000.
/// </summary>
public sealed class ProviderRouter(OfferIndex index, OfferLimits limits)
{
    /// <summary>Up to this many providers of a model are scanned in full (exact choice); above, candidates are sampled.</summary>
    public const int ScanLimit = 64;

    /// <summary>Random draws from a large list before falling back to a full scan (most providers busy or unsuitable).</summary>
    public const int SampleLimit = 32;

    public OfferLimits Limits => limits;

    /// <summary>What the market can do for the request now; <paramref name="tried"/> (providers a job already failed on) do not count.</summary>
    public RouteAvailability Check(in RouteNeeds needs, List<IRoutableProvider>? tried = null)
    {
        var offered = false;
        var suitable = false;
        var busy = false;
        foreach (var provider in index.Current.Of(needs.Model))
        {
            if (!provider.Accepting || !provider.TryGetOffer(needs.Model, out var offer))
            {
                continue;
            }

            offered = true;
            if (!needs.Offer.MetBy(offer))
            {
                continue;
            }

            suitable = true;
            if ((tried is not null && Contains(tried, provider)) || !Acceptable(provider, offer, needs, out _))
            {
                continue;
            }

            if (HasRoom(provider))
            {
                return RouteAvailability.Available;
            }

            busy = true;
        }

        return busy ? RouteAvailability.Busy : suitable ? RouteAvailability.NoneAvailable : offered ? RouteAvailability.Unsuitable : RouteAvailability.NotOffered;
    }

    /// <summary>What no offer of the model meets, in a consumer's words (for a 400); null when some offer meets every need.</summary>
    public string? Unmet(in RouteNeeds needs)
    {
        string? unmet = null;
        foreach (var provider in index.Current.Of(needs.Model))
        {
            if (provider.Accepting && provider.TryGetOffer(needs.Model, out var offer))
            {
                if (needs.Offer.Unmet(offer) is not { } reason)
                {
                    return null;
                }

                unmet ??= reason;
            }
        }

        return unmet;
    }

    /// <summary>
    /// Picks a provider and takes one of its slots; null when none is left. <paramref name="tried"/> are skipped. With a
    /// budget, offers it covers are preferred; when it covers none, the pick ignores it (billing then asks for more).
    /// </summary>
    public RoutePick? Pick(in RouteNeeds needs, List<IRoutableProvider> tried) =>
        PickWithin(needs, tried) ?? (needs.BudgetMsat is not null ? PickWithin(needs with { BudgetMsat = null }, tried) : null);

    private RoutePick? PickWithin(in RouteNeeds needs, List<IRoutableProvider> tried)
    {
        if (!index.Current.ByModel.TryGetValue(needs.Model, out var model))
        {
            return null;
        }

        return model.Providers.Length > ScanLimit && Sample(model, needs, tried) is { } sampled ? sampled : Scan(model.Providers, needs, tried);
    }

    /// <summary>
    /// Power-of-two-choices among random draws from a long list: the first two providers drawn that can take the job.
    /// Null when <see cref="SampleLimit"/> draws found none that could (the caller then scans the whole list).
    /// </summary>
    private RoutePick? Sample(OfferIndex.ModelProviders model, in RouteNeeds needs, List<IRoutableProvider> tried)
    {
        var list = model.Providers;
        var draws = 0;
        while (draws < SampleLimit)
        {
            RoutePick? first = null;
            RoutePick? second = null;
            for (; draws < SampleLimit && second is null; draws++)
            {
                var candidate = list[Random.Shared.Next(list.Length)];
                if ((first is { } f && ReferenceEquals(f.Provider, candidate))
                    || !Serves(candidate, needs, out var offer) || !Acceptable(candidate, offer, needs, out var reservation) || !HasRoom(candidate) || Contains(tried, candidate))
                {
                    continue;
                }

                var pick = new RoutePick(candidate, offer, reservation);
                if (first is null)
                {
                    first = pick;
                }
                else
                {
                    second = pick;
                }
            }

            if (first is not { } a)
            {
                return null;
            }

            var chosen = second is { } b && Score(b, model.CheapestBlendedMsatPerMtok) < Score(a, model.CheapestBlendedMsatPerMtok) ? b : a;
            if (chosen.Provider.TryAcquireSlot())
            {
                return chosen;
            }
        }

        return null;
    }

    private static double Score(in RoutePick pick, double cheapest) =>
        PowerOfTwoChoices.Score(pick.Provider.LatencyEstimateMs, pick.Provider.InFlight, Blended(pick.Offer), cheapest);

    private RoutePick? Scan(IRoutableProvider[] snapshot, in RouteNeeds needs, List<IRoutableProvider> tried)
    {
        var candidates = ArrayPool<IRoutableProvider>.Shared.Rent(Math.Max(1, snapshot.Length));
        var offers = ArrayPool<ModelOffer>.Shared.Rent(Math.Max(1, snapshot.Length));
        var reservations = ArrayPool<Reservation>.Shared.Rent(Math.Max(1, snapshot.Length));
        try
        {
            var count = 0;
            var cheapest = double.MaxValue;
            foreach (var session in snapshot)
            {
                if (!Serves(session, needs, out var offer) || !Acceptable(session, offer, needs, out var reservation) || !HasRoom(session) || Contains(tried, session))
                {
                    continue;
                }

                candidates[count] = session;
                offers[count] = offer;
                reservations[count] = reservation;
                count++;
                cheapest = Math.Min(cheapest, Blended(offer));
            }

            while (count > 0)
            {
                var scorer = new Scorer(candidates, offers, cheapest);
                var index = PowerOfTwoChoices.PickIndex(count, scorer.Score, Random.Shared);
                var pick = candidates[index];
                if (pick.TryAcquireSlot())
                {
                    return new RoutePick(pick, offers[index], reservations[index]);
                }

                // Filled up since the scan: drop it and choose again among the rest.
                count--;
                candidates[index] = candidates[count];
                offers[index] = offers[count];
                reservations[index] = reservations[count];
            }

            return null;
        }
        finally
        {
            Array.Clear(candidates, 0, snapshot.Length);
            ArrayPool<IRoutableProvider>.Shared.Return(candidates);
            Array.Clear(offers, 0, snapshot.Length);
            ArrayPool<ModelOffer>.Shared.Return(offers);
            ArrayPool<Reservation>.Shared.Return(reservations);
        }
    }

    private static bool Serves(IRoutableProvider session, in RouteNeeds needs, out ModelOffer offer)
    {
        if (!session.Accepting || !session.TryGetOffer(needs.Model, out offer))
        {
            offer = null!;
            return false;
        }

        return needs.Offer.MetBy(offer);
    }

    /// <summary>The offer is within the price bounds (and the budget, if any) and the provider is not parked.</summary>
    private bool Acceptable(IRoutableProvider provider, ModelOffer offer, in RouteNeeds needs, out Reservation reservation) =>
        InferenceReservation.TryReserve(needs.Basis, offer.Price, offer.ContextWindow, limits, needs.Ceiling, out reservation, out _)
        && (needs.BudgetMsat is not { } budget || reservation.Msat <= budget)
        && !provider.IsParked;

    private static bool HasRoom(IRoutableProvider provider) => provider.InFlight < provider.MaxConcurrent;

    private static double Blended(ModelOffer offer) => offer.Price.BlendedMsatPerMtok;

    private static bool Contains(List<IRoutableProvider> tried, IRoutableProvider session)
    {
        foreach (var t in tried)
        {
            if (ReferenceEquals(t, session))
            {
                return true;
            }
        }

        return false;
    }

    private sealed class Scorer(IRoutableProvider[] candidates, ModelOffer[] offers, double cheapest)
    {
        public double Score(int i) =>
            PowerOfTwoChoices.Score(candidates[i].LatencyEstimateMs, candidates[i].InFlight, Blended(offers[i]), cheapest);
    }
}
