namespace Coinop.Provider.Reconnect;

/// <summary>
/// Provider reconnect delays: exponential from 1 s to 60 s with a uniform 0.8–1.2 jitter. Failures before
/// authentication escalate the delay; a connection that authenticated, or a planned close by the market,
/// resets it so a deploy does not push providers into long waits.
/// </summary>
public sealed class ReconnectBackoff
{
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

    /// <summary>The delay before the next attempt, after an attempt that failed before authentication.</summary>
    public TimeSpan NextAfterFailure()
    {
        var delay = BaseDelay(_failures);
        _failures = Math.Min(_failures + 1, 30);
        return Jitter(delay);
    }

    /// <summary>The delay after a session that authenticated or was closed on purpose: back to the initial delay.</summary>
    public TimeSpan NextAfterSession()
    {
        _failures = 0;
        return Jitter(Initial);
    }

    public void Reset() => _failures = 0;

    /// <summary>The initial delay, jittered, without touching the failure count (moving on to another market node).</summary>
    public TimeSpan InitialJittered() => Jitter(Initial);

    private TimeSpan BaseDelay(int failures)
    {
        var ms = Initial.TotalMilliseconds * Math.Pow(2, failures);
        return TimeSpan.FromMilliseconds(Math.Min(ms, Max.TotalMilliseconds));
    }

    private TimeSpan Jitter(TimeSpan delay) => delay * (0.8 + 0.4 * _unitRandom());
}
