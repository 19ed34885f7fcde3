using System.Diagnostics;
using Coinop.Core.Pricing;
using Coinop.Core.Protocol;
using Coinop.Market.Gateway;
using Coinop.Market.Inference;

namespace Coinop.Bench;

/// <summary>
/// One routing decision (<see cref="ProviderRouter.Check"/> then <see cref="ProviderRouter.Pick"/>, the slot released
/// again) over many linked providers, in process: every provider serving one model, and the same providers spread over
/// 100 models. Prints p50/p99/max per decision.
/// </summary>
public static class RouterBenchmark
{
    public static void Run(int count)
    {
        foreach (var models in new[] { 1, 100 })
        {
            var providers = new RoutableProviders(Enumerable.Range(0, count)
                .Select(i => (IRoutableProvider)new IdleProvider($"p{i}", $"model-{i % models}", 1000 + (i % 7) * 100, 5 + (i % 13)))
                .ToArray());
            var router = new ProviderRouter(new OfferIndex(providers), OfferLimits.Default);
            var needs = new RouteNeeds("model-0", default, null, new ReservationBasis(200, 64));
            var tried = new List<IRoutableProvider>();
            var times = new double[20_000];
            for (var i = 0; i < 2_000 + times.Length; i++)
            {
                var start = Stopwatch.GetTimestamp();
                var available = router.Check(needs);
                var pick = router.Pick(needs, tried) ?? throw new InvalidOperationException("no provider picked");
                var elapsed = Stopwatch.GetElapsedTime(start);
                pick.Provider.ReleaseSlot();
                if (available != RouteAvailability.Available)
                {
                    throw new InvalidOperationException(available.ToString());
                }

                if (i >= 2_000)
                {
                    times[i - 2_000] = elapsed.TotalMicroseconds;
                }
            }

            Array.Sort(times);
            Console.WriteLine($"routing decision over {count:N0} providers, {models} model(s) ({count / models:N0} serve the model): "
                + $"p50 {times[times.Length / 2]:N1} µs, p99 {times[(int)(times.Length * 0.99)]:N1} µs, max {times[^1]:N1} µs");
        }
    }

    private sealed class RoutableProviders(IRoutableProvider[] snapshot) : IRoutableProviders
    {
        public IRoutableProvider[] Snapshot => snapshot;
    }

    /// <summary>A linked provider as routing sees it: one offer, a latency estimate, slots.</summary>
    private sealed class IdleProvider(string id, string model, long inputMsat, double latencyMs) : IRoutableProvider
    {
        private readonly ModelOffer _offer = new(model, "openai", inputMsat, inputMsat * 2, 8192, 4);
        private int _inFlight;

        public string ProviderId => id;

        public string Name => id;

        public long LinkEpoch => 1;

        public bool Accepting => true;

        public int MaxConcurrent => 4;

        public int InFlight => Volatile.Read(ref _inFlight);

        public bool IsParked => false;

        public double LatencyEstimateMs => latencyMs;

        public IReadOnlyCollection<ModelOffer> Offers => [_offer];

        public bool TryGetOffer(string name, out ModelOffer offer)
        {
            offer = _offer;
            return string.Equals(name, model, StringComparison.Ordinal);
        }

        public bool TryAcquireSlot() => Interlocked.Increment(ref _inFlight) <= 4 || Interlocked.Decrement(ref _inFlight) < 0;

        public void ReleaseSlot() => Interlocked.Decrement(ref _inFlight);

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
