using Coinop.Core.Work;

namespace Coinop.Core.Workloads;

/// <summary>
/// The deadlines that keep at most one copy of a workload running (docs/durability.md). All are measured from the last
/// contact between the copy's provider and the market:
/// <list type="bullet">
/// <item>the provider stops its copy <see cref="ProviderStopAfter"/> after <b>sending</b> the last heartbeat the market
/// acknowledged for it, on its monotonic clock; the market sends it this bound with every start;</item>
/// <item>the market replaces the copy (revokes its epoch, then promotes or respawns) <see cref="EvictAfter"/> after
/// <b>receiving</b> that heartbeat, on its own monotonic clock, and calls it suspect <see cref="SuspectAfter"/> after it.</item>
/// </list>
/// A heartbeat is sent before it is received, so <c>ProviderStopAfter + ClockSlack ≤ EvictAfter</c>, with a slack that
/// covers the two clocks' rate difference over <see cref="ProviderStopAfter"/> (<see cref="MaxClockDrift"/>) and the time
/// the provider takes to notice the deadline and kill the process (<see cref="KillAllowance"/>), means the cut-off copy is
/// gone before the market starts another.
/// </summary>
public sealed record WorkloadTimings(
    TimeSpan HeartbeatInterval,
    TimeSpan ProviderStopAfter,
    TimeSpan ClockSlack,
    TimeSpan SuspectAfter,
    TimeSpan EvictAfter)
{
    /// <summary>The market's default stop-after: a copy cut off from the market for 6 s stops; the market replaces it after 7.06 s.</summary>
    public static readonly TimeSpan DefaultStopAfter = TimeSpan.FromSeconds(6);

    /// <summary>
    /// The largest rate difference allowed between the provider's monotonic clock and the market's: 1 %, two orders of
    /// magnitude above a quartz clock's error or an NTP slew (at most 0.05 %). A clock that runs slower than this (a
    /// suspended virtual machine) is outside the guarantee.
    /// </summary>
    public const double MaxClockDrift = 0.01;

    /// <summary>What the slack allows, beyond drift, for the provider to see its deadline pass (its watchdog ticks every 20 ms) and kill the copy.</summary>
    public static readonly TimeSpan KillAllowance = TimeSpan.FromSeconds(1);

    /// <summary>The market's defaults: heartbeats every 2 s, stop after 6 s, slack 1.06 s, suspect at 6 s, replace at 7.06 s.</summary>
    public static WorkloadTimings Default { get; } = ForMarket(DefaultStopAfter);

    /// <summary>
    /// The timings a market derives from its one knob, the provider's stop-after: copies heartbeat three times within it
    /// (two lost heartbeats never stop a healthy copy), the slack is the allowed drift over stop-after plus
    /// <see cref="KillAllowance"/>, the market calls a copy suspect once its provider should have stopped it, and replaces
    /// it once stop-after plus the slack passed. Check the result with <see cref="Validate"/>.
    /// </summary>
    public static WorkloadTimings ForMarket(TimeSpan providerStopAfter)
    {
        var slack = providerStopAfter * MaxClockDrift + KillAllowance;
        return new WorkloadTimings(TimeSpan.FromTicks(providerStopAfter.Ticks / 3), providerStopAfter, slack, providerStopAfter, providerStopAfter + slack); // floored: 3 × interval never exceeds stop-after
    }

    /// <summary>
    /// The kernel lease of a running copy: it lapses exactly when the market would replace the copy, and is renewed
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

        if (ClockSlack < ProviderStopAfter * MaxClockDrift)
        {
            errors.Add($"clock slack ({Seconds(ClockSlack)}) must cover {MaxClockDrift * 100:0.##}% clock drift over provider stop-after ({Seconds(ProviderStopAfter * MaxClockDrift)})");
        }

        if (ProviderStopAfter + ClockSlack > EvictAfter)
        {
            errors.Add($"provider stop-after + clock slack ({Seconds(ProviderStopAfter)} + {Seconds(ClockSlack)}) must not exceed evict-after ({Seconds(EvictAfter)}), so a cut-off copy is gone before the market replaces it");
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
