using System.Diagnostics.Metrics;

namespace Coinop.Market.Payments;

/// <summary>The payment layer's metrics (<c>Meter "Coinop.Payments"</c>).</summary>
public sealed class PaymentsMetrics
{
    public const string MeterName = "Coinop.Payments";

    private readonly Counter<long> _payments;
    private readonly Counter<long> _refused;
    private readonly Counter<long> _receivedMsat;
    private readonly Counter<long> _chargedMsat;

    public PaymentsMetrics(IMeterFactory meters)
    {
        var meter = meters.Create(MeterName);
        _payments = meter.CreateCounter<long>("coinop.payments.accepted", description: "Payments accepted, by kind (token, balance)");
        _refused = meter.CreateCounter<long>("coinop.payments.refused", description: "Payments refused, by reason");
        _receivedMsat = meter.CreateCounter<long>("coinop.payments.received", unit: "msat", description: "Ecash accepted");
        _chargedMsat = meter.CreateCounter<long>("coinop.payments.charged", unit: "msat", description: "What settled jobs cost their consumers");
    }

    public void Accepted(string kind) => _payments.Add(1, new KeyValuePair<string, object?>("kind", kind));

    public void Refused(string reason) => _refused.Add(1, new KeyValuePair<string, object?>("reason", reason));

    public void Received(long msat) => _receivedMsat.Add(msat);

    public void Charged(long msat) => _chargedMsat.Add(msat);
}
