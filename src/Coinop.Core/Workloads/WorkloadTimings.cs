using Coinop.Core.Work;

namespace Coinop.Core.Workloads;

/// <summary>
/// The deadlines that keep at most one copy of a workload running. All are measured from the last contact
/// between the copy's provider and the market:
/// <list type="bullet">
/// <item>the provider stops its copy <see cref="ProviderStopAfter"/> after sending the last heartbeat the market
/// acknowledged (never later; it measures with its monotonic clock, so only rate drift and the time to kill the
/// process matter, which <see cref="ClockSlack"/> covers);</item>
/// <item>the market marks the copy suspect <see cref="SuspectAfter"/> after receiving that heartbeat, and evicts it
/// (revokes its epoch, then promotes or respawns) <see cref="EvictAfter"/> after it.</item>
/// </list>
/// Since the heartbeat was sent before it was received, <c>ProviderStopAfter + ClockSlack &lt; SuspectAfter ≤
/// EvictAfter</c> means a cut-off copy is already gone before the market even suspects it.
/// </summary>
public sealed record WorkloadTimings(
    TimeSpan HeartbeatInterval,
    TimeSpan ProviderStopAfter,
    TimeSpan ClockSlack,
    TimeSpan SuspectAfter,
    TimeSpan EvictAfter)
{
    /// <summary>The market's defaults: heartbeats every 5 s, stop after 105 s, slack 10 s, suspect at 120 s, evict at 300 s.</summary>
    public static WorkloadTimings Default { get; } = ForMarket(
        heartbeatMinTtl: TimeSpan.FromSeconds(10), heartbeatGrace: TimeSpan.FromSeconds(10),
        suspectAfter: TimeSpan.FromSeconds(120), evictAfter: TimeSpan.FromSeconds(300));

    /// <summary>
    /// The timings a market derives from its knobs and hands to providers. Copies heartbeat every half minimum TTL (as
    /// providers do), but at least four times within suspect-after minus the grace, so a market that stretches provider
    /// TTLs still hears its copies often enough. The heartbeat grace is the clock slack, and the provider stops a copy one
    /// heartbeat interval before suspect-after minus the slack: <c>stop_after = suspect_after − grace − interval</c>, the
    /// longest stop-after the chain allows with a heartbeat's worth of margin, and never under three intervals. Check the
    /// result with <see cref="Validate"/>: knobs that leave no room (suspect-after not above the grace) are refused, not bent.
    /// </summary>
    public static WorkloadTimings ForMarket(TimeSpan heartbeatMinTtl, TimeSpan heartbeatGrace, TimeSpan suspectAfter, TimeSpan evictAfter)
    {
        var interval = TimeSpan.FromTicks(Math.Min((heartbeatMinTtl / 2).Ticks, ((suspectAfter - heartbeatGrace) / 4).Ticks));
        return new WorkloadTimings(interval, suspectAfter - heartbeatGrace - interval, heartbeatGrace, suspectAfter, evictAfter);
    }

    /// <summary>
    /// The kernel lease of a running copy: it lapses exactly when the market would evict the copy, and is renewed
    /// by every acknowledged heartbeat.
    /// </summary>
    public LeaseTimings CopyLease => new(EvictAfter, HeartbeatInterval);

    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        foreach (var (name, value) in new[]
                 {
                     ("heartbeat interval", HeartbeatInterval), ("provider stop-after", ProviderStopAfter),
                     ("clock slack", ClockSlack), ("suspect-after", SuspectAfter), ("evict-after", EvictAfter),
                 })
        {
            if (value <= TimeSpan.Zero)
            {
                errors.Add($"{name} must be positive");
            }
        }

        if (errors.Count > 0)
        {
            return errors;
        }

        // Two lost heartbeats in a row must not stop a healthy copy.
        if (ProviderStopAfter < HeartbeatInterval * 3)
        {
            errors.Add($"provider stop-after ({Seconds(ProviderStopAfter)}) must be at least 3 x the heartbeat interval ({Seconds(HeartbeatInterval)})");
        }

        if (ProviderStopAfter + ClockSlack >= SuspectAfter)
        {
            errors.Add($"provider stop-after + clock slack ({Seconds(ProviderStopAfter)} + {Seconds(ClockSlack)}) must be less than suspect-after ({Seconds(SuspectAfter)}), so a cut-off copy stops before the market suspects it");
        }

        if (SuspectAfter > EvictAfter)
        {
            errors.Add($"suspect-after ({Seconds(SuspectAfter)}) must not exceed evict-after ({Seconds(EvictAfter)})");
        }

        return errors;
    }

    public WorkloadTimings EnsureValid()
    {
        var errors = Validate();
        return errors.Count == 0 ? this : throw new ArgumentException(string.Join("; ", errors));
    }

    private static string Seconds(TimeSpan t) => $"{t.TotalSeconds:0.###}s";
}
