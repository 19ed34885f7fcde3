namespace Coinop.Market.Workloads;

/// <summary>
/// The supervisor's clock: the wall clock read once when the supervisor starts, advanced by the monotonic clock since,
/// in whole milliseconds (the store's resolution, so the machine's times and the stored ones agree). Silence is measured
/// on it, so a step of the wall clock (an NTP correction) cannot make the market replace a copy early: the single-writer
/// margin only has to cover the rate difference of two monotonic clocks (docs/durability.md).
/// </summary>
internal sealed class WorkloadClock(TimeProvider time)
{
    private readonly DateTimeOffset _start = time.GetUtcNow();
    private readonly long _origin = time.GetTimestamp();

    public DateTimeOffset Now() => DateTimeOffset.FromUnixTimeMilliseconds((_start + time.GetElapsedTime(_origin)).ToUnixTimeMilliseconds());
}
