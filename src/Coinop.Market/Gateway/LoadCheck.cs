using Coinop.Core.Protocol;

namespace Coinop.Market.Gateway;

/// <summary>
/// The load figures a provider reports, bounded to what they can mean before the market shows or sums them: job counts
/// from 0 to <see cref="MaxJobs"/> (so a sum over every provider a node can hold stays an int), latencies and throughput
/// from 0 to <see cref="MaxFigure"/>, the error rate a share from 0 to 1. The market cannot check these figures; it can
/// keep them from breaking what reads them.
/// </summary>
public static class LoadCheck
{
    /// <summary>The most jobs in flight or queued one provider is believed to report (32,768 providers at this sum to under 2^31).</summary>
    public const int MaxJobs = 65_535;

    /// <summary>The largest latency (ms) or throughput (tokens/s) shown: about eleven days, or a billion tokens a second.</summary>
    public const double MaxFigure = 1e9;

    public static LoadFigures Bounded(LoadFigures load)
    {
        var bounded = new LoadFigures(
            Math.Clamp(load.InFlight, 0, MaxJobs),
            Math.Clamp(load.QueueDepth, 0, MaxJobs),
            Figure(load.P50LatencyMs),
            Figure(load.P95LatencyMs),
            Figure(load.TokensPerSecond),
            double.IsFinite(load.ErrorRate) ? Math.Clamp(load.ErrorRate, 0, 1) : 0);
        return bounded.Equals(load) ? load : bounded;
    }

    private static double Figure(double value) => double.IsFinite(value) ? Math.Clamp(value, 0, MaxFigure) : 0;
}
