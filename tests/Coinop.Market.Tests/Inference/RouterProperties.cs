using Coinop.Core.Pricing;
using Coinop.Core.Protocol;
using Coinop.Market.Gateway;
using Coinop.Market.Inference;
using CsCheck;

namespace Coinop.Market.Tests.Inference;

/// <summary>
/// The router over small and large markets (a full scan up to <see cref="ProviderRouter.ScanLimit"/> providers of a model,
/// random sampling above): a pick is always a provider that may take the job, and there is a pick whenever one exists.
/// </summary>
public class RouterProperties
{
    private static readonly ModelPrice Ceiling = new(5_000_000, 5_000_000);

    private static readonly Gen<FakeProvider> Provider = Gen.Select(Gen.Int[0, 9], Gen.Bool, Gen.Int[0, 4], Gen.Int[1, 4], Gen.Int[0, 6], Gen.Int[1, 50])
        .Select((serves, accepting, inFlight, max, priceStep, latency) =>
            new FakeProvider(serves < 8 ? "llama3" : "other", accepting || serves == 0, priceStep == 6, inFlight, max, 1_000_000L * (priceStep + 1), latency));

    [Fact]
    public void A_pick_may_always_take_the_job_and_there_is_one_whenever_some_provider_could()
    {
        Gen.Select(Provider.Array[0, 400], Gen.Int[0, 20]).Sample((providers, triedCount) =>
        {
            var router = new ProviderRouter(new OfferIndex(new Fixed(providers)), OfferLimits.Default);
            var tried = providers.Take(triedCount).Cast<IRoutableProvider>().ToList();
            var needs = new RouteNeeds("llama3", default, Ceiling, new ReservationBasis(100, 100));
            var eligible = providers.Where(p => Eligible(p, needs) && !tried.Contains(p)).ToList();
            var before = providers.Select(p => p.InFlight).ToArray();

            var pick = router.Pick(needs, tried);

            if (eligible.Count == 0)
            {
                Assert.Null(pick);
                Assert.Equal(before, providers.Select(p => p.InFlight));
            }
            else
            {
                var chosen = Assert.IsType<FakeProvider>(pick?.Provider);
                Assert.Contains(chosen, eligible);
                Assert.Equal(before[Array.IndexOf(providers, chosen)] + 1, chosen.InFlight); // its slot is taken, no other
                Assert.Equal(before.Sum() + 1, providers.Sum(p => p.InFlight));
            }
        });
    }

    [Fact]
    public void Among_a_thousand_full_providers_the_one_with_room_is_found()
    {
        var providers = Enumerable.Range(0, 1000).Select(i => new FakeProvider("llama3", true, false, 4, 4, 1_000_000, 5)).ToArray();
        providers[737] = new FakeProvider("llama3", true, false, 3, 4, 1_000_000, 5);
        var router = new ProviderRouter(new OfferIndex(new Fixed(providers)), OfferLimits.Default);
        var needs = new RouteNeeds("llama3", default, null, new ReservationBasis(100, 100));

        Assert.Same(providers[737], router.Pick(needs, [])?.Provider);
        Assert.Null(router.Pick(needs, []));
        Assert.Equal(RouteAvailability.Busy, router.Check(needs));
    }

    [Fact]
    public void Offers_that_change_after_the_index_was_built_are_routed_to()
    {
        var late = new FakeProvider("other", true, false, 0, 4, 1_000_000, 5);
        var providers = new Fixed([late]);
        var index = new OfferIndex(providers);
        var router = new ProviderRouter(index, OfferLimits.Default);
        var needs = new RouteNeeds("llama3", default, null, new ReservationBasis(100, 100));
        Assert.Equal(RouteAvailability.NotOffered, router.Check(needs));

        late.Serve("llama3");
        OfferChanges.Changed();

        Assert.Equal(RouteAvailability.Available, router.Check(needs));
        Assert.Same(late, router.Pick(needs, [])?.Provider);
        Assert.Contains("\"llama3\"", System.Text.Encoding.UTF8.GetString(index.Current.ModelsBody), StringComparison.Ordinal);
    }

    private static bool Eligible(FakeProvider p, in RouteNeeds needs) =>
        p.Accepting && !p.IsParked && p.InFlight < p.MaxConcurrent && p.TryGetOffer(needs.Model, out var offer)
        && InferenceReservation.TryReserve(needs.Basis, offer.Price, offer.ContextWindow, OfferLimits.Default, needs.Ceiling, out _, out _);

    private sealed class Fixed(FakeProvider[] providers) : IRoutableProviders
    {
        public IRoutableProvider[] Snapshot { get; } = providers;
    }

    private sealed class FakeProvider(string model, bool accepting, bool parked, int inFlight, int max, long msatPerMtok, double latencyMs) : IRoutableProvider
    {
        private ModelOffer _offer = new(model, "openai", msatPerMtok, msatPerMtok, 8192, max);

        public string ProviderId { get; } = Guid.NewGuid().ToString("n");

        public string Name => ProviderId;

        public long LinkEpoch => 1;

        public bool Accepting => accepting;

        public int MaxConcurrent => max;

        public int InFlight { get; private set; } = inFlight;

        public bool IsParked => parked;

        public double LatencyEstimateMs => latencyMs;

        public IReadOnlyCollection<ModelOffer> Offers => [_offer];

        public void Serve(string other) => _offer = _offer with { Model = other };

        public bool TryGetOffer(string name, out ModelOffer offer)
        {
            offer = _offer;
            return name == _offer.Model;
        }

        public bool TryAcquireSlot()
        {
            if (InFlight >= max)
            {
                return false;
            }

            InFlight++;
            return true;
        }

        public void ReleaseSlot() => InFlight--;

        public void RecordSuccess(double timeToFirstByteMs)
        {
        }

        public bool RecordFailure() => false;

        public ValueTask<bool> StartJobAsync(IJobAttemptSink sink, JobMessage job, CancellationToken cancellationToken) => ValueTask.FromResult(false);

        public void GrantWindow(IJobAttemptSink sink, int bytes)
        {
        }

        public void CancelJob(IJobAttemptSink sink, string reason)
        {
        }

        public void EndJob(IJobAttemptSink sink)
        {
        }
    }
}
