using Coinop.Provider.Reconnect;

namespace Coinop.Provider.Tests.Reconnect;

public class ReconnectBackoffTests
{
    [Fact]
    public void Failures_before_auth_double_the_delay_up_to_a_minute()
    {
        var backoff = new ReconnectBackoff(unitRandom: () => 0.5); // jitter factor exactly 1.0
        var delays = Enumerable.Range(0, 9).Select(_ => backoff.NextAfterFailure().TotalSeconds).ToArray();
        Assert.Equal([1, 2, 4, 8, 16, 32, 60, 60, 60], delays);
    }

    [Fact]
    public void A_session_that_authenticated_resets_the_delay()
    {
        var backoff = new ReconnectBackoff(unitRandom: () => 0.5);
        backoff.NextAfterFailure();
        backoff.NextAfterFailure();
        backoff.NextAfterFailure();
        Assert.Equal(TimeSpan.FromSeconds(1), backoff.NextAfterSession());
        Assert.Equal(TimeSpan.FromSeconds(1), backoff.NextAfterFailure());
    }

    [Theory]
    [InlineData(0.0, 0.8)]
    [InlineData(0.999999, 1.2)]
    public void Jitter_stays_within_point_eight_and_one_point_two(double unit, double factor)
    {
        var backoff = new ReconnectBackoff(unitRandom: () => unit);
        Assert.Equal(factor * 1000, backoff.NextAfterFailure().TotalMilliseconds, 1);
    }
}
