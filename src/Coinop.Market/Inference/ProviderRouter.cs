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

    /// <summary>Offered, but every offering provider is parked, draining, full or above the price ceiling (503).</summary>
    NoneAvailable,

    Available,
}

/// <summary>What a request needs of a provider's offer.</summary>
/// <param name="Images">The request carries images: only offers that declare vision serve it.</param>
public readonly record struct RouteNeeds(string Model, ModelPrice? Ceiling, bool Embeddings, bool AnthropicNative, bool Images = false);

/// <summary>The providers a job may go to, summarised for billing's reservation.</summary>
public readonly record struct RouteCheck(RouteAvailability Availability, ModelPrice WorstCasePrice, int? ContextWindow);

/// <summary>
/// Picks a provider for a job: among connected providers that accept jobs, serve the model, are not parked,
/// are under their concurrency limit and under the consumer's price ceiling, power-of-two-choices by
/// <see cref="PowerOfTwoChoices.Score"/> (peak-EWMA latency × load × price relative to the cheapest). No LINQ,
/// no locks held: the directory hands out an immutable snapshot.
/// </summary>
public sealed class ProviderRouter(IRoutableProviders providers)
{
    public RouteCheck Check(in RouteNeeds needs)
    {
        var offered = false;
        var available = false;
        long maxIn = 0, maxOut = 0;
        int? context = null;
        foreach (var session in providers.Snapshot)
        {
            if (!Serves(session, needs, out var offer))
            {
                continue;
            }

            offered = true;
            if (!Eligible(session, offer, needs.Ceiling))
            {
                continue;
            }

            available = true;
            maxIn = Math.Max(maxIn, offer.InputMsatPerMtok);
            maxOut = Math.Max(maxOut, offer.OutputMsatPerMtok);
            if (offer.ContextWindow is { } window)
            {
                context = Math.Max(context ?? 0, window);
            }
        }

        var availability = available ? RouteAvailability.Available : offered ? RouteAvailability.NoneAvailable : RouteAvailability.NotOffered;
        return new RouteCheck(availability, new ModelPrice(maxIn, maxOut), context);
    }

    /// <summary>Picks a provider and takes one of its slots; null when none is left. <paramref name="tried"/> are skipped.</summary>
    public IRoutableProvider? Pick(in RouteNeeds needs, List<IRoutableProvider> tried, out ModelOffer? chosenOffer)
    {
        chosenOffer = null;
        var snapshot = providers.Snapshot;
        var candidates = ArrayPool<IRoutableProvider>.Shared.Rent(Math.Max(1, snapshot.Length));
        var offers = ArrayPool<ModelOffer>.Shared.Rent(Math.Max(1, snapshot.Length));
        try
        {
            var count = 0;
            var cheapest = double.MaxValue;
            foreach (var session in snapshot)
            {
                if (!Serves(session, needs, out var offer) || !Eligible(session, offer, needs.Ceiling) || Contains(tried, session))
                {
                    continue;
                }

                candidates[count] = session;
                offers[count] = offer;
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
                    chosenOffer = offers[index];
                    return pick;
                }

                // Filled up since the scan: drop it and choose again among the rest.
                count--;
                candidates[index] = candidates[count];
                offers[index] = offers[count];
            }

            return null;
        }
        finally
        {
            Array.Clear(candidates, 0, snapshot.Length);
            ArrayPool<IRoutableProvider>.Shared.Return(candidates);
            Array.Clear(offers, 0, snapshot.Length);
            ArrayPool<ModelOffer>.Shared.Return(offers);
        }
    }

    private static bool Serves(IRoutableProvider session, in RouteNeeds needs, out ModelOffer offer)
    {
        if (!session.Accepting || !session.TryGetOffer(needs.Model, out offer))
        {
            offer = null!;
            return false;
        }

        return (!needs.Embeddings || offer.Embeddings) && (!needs.AnthropicNative || offer.AnthropicNative) && (!needs.Images || offer.Vision);
    }

    private static bool Eligible(IRoutableProvider session, ModelOffer offer, ModelPrice? ceiling) =>
        (ceiling is not { } c || offer.Price.IsWithin(c))
        && !session.IsParked
        && session.InFlight < session.MaxConcurrent;

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
