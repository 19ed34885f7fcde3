namespace Coinop.Provider.Reconnect;

/// <summary>
/// Provider reconnect delays: exponential from 1 s to 60 s with a uniform 0.8–1.2 jitter. Failures before
/// authentication escalate the delay; a connection that authenticated, or a planned close by the market,
/// resets it so a deploy does not push providers into long waits. While copies run here, no delay reaches past
/// their stop deadline (<see cref="BeforeCopiesStop"/>).
/// </summary>
public sealed class ReconnectBackoff
{
    /// <summary>The shortest delay <see cref="BeforeCopiesStop"/> makes: close to a deadline, attempts come no faster than this.</summary>
    public static readonly TimeSpan MinBeforeCopiesStop = TimeSpan.FromMilliseconds(100);

    private readonly Func<double> _unitRandom;
    private int _failures;

    public ReconnectBackoff(TimeSpan? initial = null, TimeSpan? max = null, Func<double>? unitRandom = null)
    {
        Initial = initial ?? TimeSpan.FromSeconds(1);
        Max = max ?? TimeSpan.FromSeconds(60);
        _unitRandom = unitRandom ?? Random.Shared.NextDouble;
    }

    public TimeSpan Initial { get; }

    public TimeSpan Max { get; }

    public int ConsecutiveFailures => _failures;

    /// <summary>
    /// The delay before the next attempt, after an attempt that failed before authentication; brought forward for copies
    /// that stop in <paramref name="untilCopiesStop"/> (<see cref="BeforeCopiesStop"/>). Only a delay the backoff chose
    /// escalates it: the attempts brought forward near a deadline must not leave a minute's wait once the copies stopped.
    /// </summary>
    public TimeSpan NextAfterFailure(TimeSpan? untilCopiesStop = null)
    {
        var delay = Jitter(BaseDelay(_failures));
        var next = BeforeCopiesStop(delay, untilCopiesStop);
        if (next == delay)
        {
            _failures = Math.Min(_failures + 1, 30);
        }

        return next;
    }

    /// <summary>The delay after a session that authenticated or was closed on purpose: back to the initial delay.</summary>
    public TimeSpan NextAfterSession()
    {
        _failures = 0;
        return Jitter(Initial);
    }

    public void Reset() => _failures = 0;

    /// <summary>
    /// The delay before the next attempt when the first of the copies running here stops in
    /// <paramref name="untilFirstStop"/> unless the market acknowledges a heartbeat (docs/durability.md): at most half
    /// of that, so a market that is back before the deadline is reached before it. The escalated backoff alone
    /// overshoots an outage by up to its own length (a market back after 9 s, the next attempt after 16 s) and
    /// stopped copies a shorter outage than stop-after should have spared. Null (no copy) or a deadline already
    /// passed: <paramref name="delay"/> unchanged.
    /// </summary>
    public static TimeSpan BeforeCopiesStop(TimeSpan delay, TimeSpan? untilFirstStop)
    {
        if (untilFirstStop is not { } left || left <= TimeSpan.Zero)
        {
            return delay;
        }

        var half = left / 2;
        var cap = half > MinBeforeCopiesStop ? half : MinBeforeCopiesStop;
        return delay < cap ? delay : cap;
    }

    /// <summary>The initial delay, jittered, without touching the failure count (moving on to another market node).</summary>
    public TimeSpan InitialJittered() => Jitter(Initial);

    private TimeSpan BaseDelay(int failures)
    {
        var ms = Initial.TotalMilliseconds * Math.Pow(2, failures);
        return TimeSpan.FromMilliseconds(Math.Min(ms, Max.TotalMilliseconds));
    }

    private TimeSpan Jitter(TimeSpan delay) => delay * (0.8 + 0.4 * _unitRandom());
}
