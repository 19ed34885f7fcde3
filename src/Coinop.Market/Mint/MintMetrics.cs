using System.Diagnostics.Metrics;

namespace Coinop.Market.Mint;

/// <summary>The mint's counters (exported with the market's other metrics).</summary>
internal static class MintMetrics
{
    public static readonly Meter Meter = new("Coinop.Mint");
    public static readonly Counter<long> ProofsSpent = Meter.CreateCounter<long>("coinop_mint_proofs_spent", description: "Proofs added to the spent set");
    public static readonly Counter<long> SignaturesIssued = Meter.CreateCounter<long>("coinop_mint_signatures_issued", description: "Blind signatures issued");
}
