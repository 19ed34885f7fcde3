namespace Coinop.Core.Routing;

/// <summary>
/// Peak-EWMA latency (Finagle, Linkerd): a slower observation raises the estimate at once; faster ones pull it
/// down with an exponential decay over wall time. A provider that just became slow loses traffic immediately
/// and wins it back gradually. Not thread-safe; callers hold the provider's lock.
/// </summary>
public sealed class PeakEwma
{
    private readonly TimeProvider _time;
    private readonly double _decayMs;
    private double _estimateMs;
    private long _stamp;

    public PeakEwma(TimeProvider time, TimeSpan decay, double initialMs)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(decay, TimeSpan.Zero);
        _time = time;
        _decayMs = decay.TotalMilliseconds;
        _estimateMs = initialMs;
        _stamp = time.GetTimestamp();
    }

    /// <summary>The current estimate in milliseconds.</summary>
    public double EstimateMs => _estimateMs;

    public void Observe(double latencyMs)
    {
        var now = _time.GetTimestamp();
        var elapsedMs = _time.GetElapsedTime(_stamp, now).TotalMilliseconds;
        _stamp = now;
        if (latencyMs > _estimateMs)
        {
            _estimateMs = latencyMs;
            return;
        }

        var w = Math.Exp(-elapsedMs / _decayMs);
        _estimateMs = _estimateMs * w + latencyMs * (1 - w);
    }
}
