namespace Coinop.Core.Heartbeats;

/// <summary>
/// Adaptive heartbeat TTLs after Nomad: the TTL grows with the number of tracked providers so the market
/// receives at most <see cref="MaxHeartbeatsPerSecond"/> heartbeats a second, within [min, max].
/// </summary>
public sealed record HeartbeatTimings(
    TimeSpan MinTtl,
    TimeSpan MaxTtl,
    double MaxHeartbeatsPerSecond,
    TimeSpan Grace,
    TimeSpan FailoverTtl)
{
    public static HeartbeatTimings Default { get; } = new(
        MinTtl: TimeSpan.FromSeconds(10),
        MaxTtl: TimeSpan.FromSeconds(600),
        MaxHeartbeatsPerSecond: 50,
        Grace: TimeSpan.FromSeconds(10),
        FailoverTtl: TimeSpan.FromSeconds(300));

    /// <summary><c>clamp(ceil(n / max_heartbeats_per_second), min_ttl, max_ttl)</c>; a rate of 0 means the maximum.</summary>
    public TimeSpan TtlFor(int trackedProviders)
    {
        if (MaxHeartbeatsPerSecond <= 0)
        {
            return MaxTtl;
        }

        var seconds = Math.Ceiling(Math.Max(0, trackedProviders) / MaxHeartbeatsPerSecond);
        var ttl = TimeSpan.FromSeconds(seconds);
        return ttl < MinTtl ? MinTtl : ttl > MaxTtl ? MaxTtl : ttl;
    }

    /// <summary>How long the market waits after the last heartbeat before declaring a provider silent.</summary>
    public TimeSpan DeadlineAfter(TimeSpan ttl) => ttl + Grace;
}
