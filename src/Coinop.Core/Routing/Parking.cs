namespace Coinop.Core.Routing;

/// <summary>
/// A small circuit breaker: after <see cref="Threshold"/> consecutive failures a provider is parked for
/// <see cref="ParkFor"/> and gets no traffic; when the time is up it is tried again, and one more failure parks
/// it again at once. Not thread-safe; callers hold the provider's lock.
/// </summary>
public sealed class Parking(TimeProvider time, int threshold = 3, TimeSpan? parkFor = null)
{
    private int _consecutiveFailures;
    private DateTimeOffset _parkedUntil = DateTimeOffset.MinValue;

    public int Threshold { get; } = threshold;

    public TimeSpan ParkFor { get; } = parkFor ?? TimeSpan.FromSeconds(15);

    public int ConsecutiveFailures => _consecutiveFailures;

    public bool IsParked => time.GetUtcNow() < _parkedUntil;

    public DateTimeOffset? ParkedUntil => IsParked ? _parkedUntil : null;

    public void RecordSuccess() => _consecutiveFailures = 0;

    /// <summary>The operator's park: no traffic until <paramref name="until"/> (a time already past un-parks).</summary>
    public void ParkUntil(DateTimeOffset until) => _parkedUntil = until;

    /// <returns>True when this failure parked the provider.</returns>
    public bool RecordFailure()
    {
        _consecutiveFailures++;
        if (_consecutiveFailures < Threshold)
        {
            return false;
        }

        _parkedUntil = time.GetUtcNow() + ParkFor;
        _consecutiveFailures = Threshold - 1; // half-open after the park: the next failure parks again
        return true;
    }
}
