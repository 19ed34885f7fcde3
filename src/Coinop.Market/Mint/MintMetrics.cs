using System.Diagnostics.Metrics;

namespace Coinop.Market.Mint;

/// <summary>The mint's counters (exported with the market's other metrics at <c>/metrics</c>).</summary>
public sealed class MintMetrics
{
    public const string MeterName = "Coinop.Mint";

    private readonly Counter<long> _proofsSpent;
    private readonly Counter<long> _signaturesIssued;

    public MintMetrics(IMeterFactory meters)
    {
        var meter = meters.Create(MeterName);
        _proofsSpent = meter.CreateCounter<long>("coinop.mint.proofs.spent", "{proof}", "Proofs added to the spent set");
        _signaturesIssued = meter.CreateCounter<long>("coinop.mint.signatures.issued", "{signature}", "Blind signatures issued");
    }

    public void ProofsSpent(int count) => _proofsSpent.Add(count);

    public void SignaturesIssued(int count) => _signaturesIssued.Add(count);
}
