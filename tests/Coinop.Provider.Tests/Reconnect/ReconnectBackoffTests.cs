using Coinop.Provider.Reconnect;
using CsCheck;

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

    [Fact]
    public void While_copies_run_no_attempt_is_put_off_past_half_the_time_left_before_they_stop()
    {
        // Four failures in: the backoff says 16 s; a copy stops in 10 s unless the market hears from us.
        Assert.Equal(TimeSpan.FromSeconds(5), ReconnectBackoff.BeforeCopiesStop(TimeSpan.FromSeconds(16), TimeSpan.FromSeconds(10)));
        Assert.Equal(TimeSpan.FromSeconds(2), ReconnectBackoff.BeforeCopiesStop(TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(10)));
        Assert.Equal(ReconnectBackoff.MinBeforeCopiesStop, ReconnectBackoff.BeforeCopiesStop(TimeSpan.FromSeconds(16), TimeSpan.FromMilliseconds(50)));
        // No copy, or its deadline passed (it is being stopped): the backoff as it is.
        Assert.Equal(TimeSpan.FromSeconds(16), ReconnectBackoff.BeforeCopiesStop(TimeSpan.FromSeconds(16), null));
        Assert.Equal(TimeSpan.FromSeconds(16), ReconnectBackoff.BeforeCopiesStop(TimeSpan.FromSeconds(16), TimeSpan.FromSeconds(-1)));
    }

    /// <summary>
    /// The provider's loop as <c>ProviderAgent</c> runs it, against a market that is unreachable until <c>back</c>: a copy
    /// whose stop deadline is <c>deadline</c> away when the link drops survives when the market returns at least two
    /// minimum delays before it; the attempt that reaches it comes within half of what was left, and no delay is ever
    /// shorter than the minimum.
    /// </summary>
    [Fact]
    public void A_market_back_before_the_copies_stop_deadline_is_reached_before_it()
    {
        var min = ReconnectBackoff.MinBeforeCopiesStop.TotalSeconds;
        Gen.Select(Gen.Double[1, 600], Gen.Double[0, 1], Gen.Int[0, 29], Gen.Double[0, 1].Array[64]).Sample((deadline, backAt, failuresBefore, jitters) =>
        {
            var back = backAt * (deadline - 2 * min);
            var j = 0;
            var backoff = new ReconnectBackoff(unitRandom: () => jitters[j++ % jitters.Length]);
            for (var i = 0; i < failuresBefore; i++)
            {
                backoff.NextAfterFailure(); // the link may drop at any point of an escalation
            }

            var t = 0.0;
            var delay = ReconnectBackoff.BeforeCopiesStop(backoff.NextAfterSession(), TimeSpan.FromSeconds(deadline - t));
            while (true)
            {
                t += delay.TotalSeconds;
                if (t >= back)
                {
                    break; // this attempt connects
                }

                delay = backoff.NextAfterFailure(TimeSpan.FromSeconds(deadline - t));
                Assert.True(delay.TotalSeconds >= min - 1e-9, $"delay {delay} at {t}");
            }

            Assert.True(t < deadline, $"reconnected at {t:0.###} s, after the copy stopped at {deadline:0.###} s (market back at {back:0.###} s)");
            // Within one tick: a delay is a TimeSpan, so half of what was left is rounded to 100 ns.
            Assert.True(t <= back + (deadline - back) / 2 + 1.0 / TimeSpan.TicksPerSecond, $"reconnected at {t:0.###} s; the market was back at {back:0.###} s, the copy stops at {deadline:0.###} s");
        });
    }

    [Fact]
    public void Attempts_brought_forward_for_copies_do_not_escalate_the_backoff()
    {
        var backoff = new ReconnectBackoff(unitRandom: () => 0.5);
        backoff.NextAfterFailure();
        backoff.NextAfterFailure(); // 1 s, 2 s: the next one the backoff chooses is 4 s
        for (var left = 3.0; left > 0.05; left /= 2)
        {
            Assert.True(backoff.NextAfterFailure(TimeSpan.FromSeconds(left)) < TimeSpan.FromSeconds(4));
        }

        // The copies stopped: the wait is where the backoff was, not a minute after a dozen quick attempts.
        Assert.Equal(TimeSpan.FromSeconds(4), backoff.NextAfterFailure());
        Assert.Equal(TimeSpan.FromSeconds(8), backoff.NextAfterFailure());
    }
}
