using System.Diagnostics.Metrics;

namespace Coinop.Market.Payments;

/// <summary>The payment layer's metrics (<c>Meter "Coinop.Payments"</c>).</summary>
public sealed class PaymentsMetrics
{
    public const string MeterName = "Coinop.Payments";

    // These steps take a fraction of a millisecond; OpenTelemetry's default buckets start at 5 ms.
    private static readonly InstrumentAdvice<double> SubMillisecond = new() { HistogramBucketBoundaries = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 1000] };

    private readonly Counter<long> _payments;
    private readonly Counter<long> _refused;
    private readonly Counter<long> _receivedMsat;
    private readonly Counter<long> _chargedMsat;
    private readonly Histogram<double> _holdDuration;
    private readonly Histogram<double> _settleDuration;

    public PaymentsMetrics(IMeterFactory meters)
    {
        var meter = meters.Create(MeterName);
        _payments = meter.CreateCounter<long>("coinop.payments.accepted", description: "Payments accepted, by kind (token, balance)");
        _refused = meter.CreateCounter<long>("coinop.payments.refused", description: "Payments refused, by reason");
        _receivedMsat = meter.CreateCounter<long>("coinop.payments.received", unit: "msat", description: "Ecash accepted");
        _chargedMsat = meter.CreateCounter<long>("coinop.payments.charged", unit: "msat", description: "What settled jobs cost their consumers");
        _holdDuration = meter.CreateHistogram("coinop.payments.hold.duration", "ms", "Time to take a request's payment into a hold, by kind (token, balance)",
            advice: SubMillisecond);
        _settleDuration = meter.CreateHistogram("coinop.payments.settle.duration", "ms", "Time to settle a paid request (charge, credit the provider, issue change), by kind",
            advice: SubMillisecond);
    }

    public void Accepted(string kind) => _payments.Add(1, new KeyValuePair<string, object?>("kind", kind));

    public void Refused(string reason) => _refused.Add(1, new KeyValuePair<string, object?>("reason", reason));

    public void Received(long msat) => _receivedMsat.Add(msat);

    public void Charged(long msat) => _chargedMsat.Add(msat);

    public void Held(bool token, TimeSpan took) => _holdDuration.Record(took.TotalMilliseconds, Kind(token));

    public void Settled(bool token, TimeSpan took) => _settleDuration.Record(took.TotalMilliseconds, Kind(token));

    private static KeyValuePair<string, object?> Kind(bool token) => new("kind", token ? "token" : "balance");
}
