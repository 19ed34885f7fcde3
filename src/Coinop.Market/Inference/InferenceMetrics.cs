using System.Diagnostics.Metrics;

namespace Coinop.Market.Inference;

/// <summary>The market's inference metrics (<c>Meter "Coinop.Market"</c>).</summary>
public sealed class InferenceMetrics
{
    public const string MeterName = "Coinop.Market";

    private readonly Counter<long> _requests;
    private readonly Counter<long> _errors;
    private readonly Counter<long> _retries;
    private readonly Histogram<double> _timeToFirstByte;
    private readonly UpDownCounter<long> _inFlight;
    private readonly Counter<long> _claimsRefused;
    private readonly Counter<long> _queueRejected;
    private readonly Histogram<double> _queueWait;
    private Func<IEnumerable<KeyValuePair<string, int>>>? _queueDepths;

    public InferenceMetrics(IMeterFactory meters)
    {
        var meter = meters.Create(MeterName);
        _requests = meter.CreateCounter<long>("coinop.market.requests", description: "Inference requests received");
        _errors = meter.CreateCounter<long>("coinop.market.errors", description: "Inference requests answered with an error, by status and code");
        _retries = meter.CreateCounter<long>("coinop.market.retries", description: "Job attempts retried on another provider");
        _timeToFirstByte = meter.CreateHistogram<double>("coinop.market.time_to_first_byte", unit: "ms", description: "From request to the first byte sent to the consumer");
        _inFlight = meter.CreateUpDownCounter<long>("coinop.market.in_flight", description: "Inference jobs in flight");
        _claimsRefused = meter.CreateCounter<long>("coinop.market.usage_claims_refused",
            description: "Completed jobs whose provider reported more usage than the market counted (beyond the tolerance): billed at the market's count");
        _queueRejected = meter.CreateCounter<long>("coinop.market.queue.rejected", description: "Requests turned away with 429 because their model's queue was full, by model");
        _queueWait = meter.CreateHistogram<double>("coinop.market.queue.wait", unit: "ms",
            description: "Time requests waited for a provider's slot, by model and outcome (acquired, left, unavailable)");
        meter.CreateObservableGauge("coinop.market.queue.depth", ObserveQueueDepths, description: "Requests waiting for a provider's slot, by model");
    }

    public void Request(InferenceRoute route) => _requests.Add(1, new KeyValuePair<string, object?>("route", route.Path()));

    public void Error(int status, string code) =>
        _errors.Add(1, new KeyValuePair<string, object?>("status", status), new KeyValuePair<string, object?>("code", code));

    public void Retry() => _retries.Add(1);

    public void FirstByte(double milliseconds) => _timeToFirstByte.Record(milliseconds);

    public void JobStarted() => _inFlight.Add(1);

    public void JobEnded() => _inFlight.Add(-1);

    public void UsageClaimRefused() => _claimsRefused.Add(1);

    public void QueueRejected(string model) => _queueRejected.Add(1, new KeyValuePair<string, object?>("model", model));

    public void QueueWait(string model, double milliseconds, string outcome) =>
        _queueWait.Record(milliseconds, new KeyValuePair<string, object?>("model", model), new KeyValuePair<string, object?>("outcome", outcome));

    /// <summary>Where the queue depth gauge reads from (the capacity queue registers itself).</summary>
    public void ObserveQueues(Func<IEnumerable<KeyValuePair<string, int>>> depths) => _queueDepths = depths;

    private IEnumerable<Measurement<int>> ObserveQueueDepths()
    {
        foreach (var (model, depth) in _queueDepths?.Invoke() ?? [])
        {
            yield return new Measurement<int>(depth, new KeyValuePair<string, object?>("model", model));
        }
    }
}
