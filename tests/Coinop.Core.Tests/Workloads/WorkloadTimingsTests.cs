using Coinop.Core.Workloads;
using CsCheck;

namespace Coinop.Core.Tests.Workloads;

public class WorkloadTimingsTests
{
    private static WorkloadTimings Seconds(double heartbeat, double stop, double slack, double suspect, double evict) => new(
        TimeSpan.FromSeconds(heartbeat), TimeSpan.FromSeconds(stop), TimeSpan.FromSeconds(slack),
        TimeSpan.FromSeconds(suspect), TimeSpan.FromSeconds(evict));

    [Fact]
    public void The_defaults_hold_the_single_writer_relation_and_replace_a_silent_copy_within_eight_seconds()
    {
        Assert.Empty(WorkloadTimings.Default.Validate());
        Assert.Equal(Seconds(2, 6, 1.06, 6, 7.06), WorkloadTimings.Default);
        var lease = WorkloadTimings.Default.CopyLease;
        Assert.Empty(lease.Validate());
        Assert.Equal(WorkloadTimings.Default.EvictAfter, lease.Ttl);
    }

    [Theory]
    [InlineData(6, 2, 1.06, 7.06)]
    [InlineData(3, 1, 1.03, 4.03)]
    [InlineData(300, 100, 4, 304)]
    public void The_market_knob_derives_a_valid_chain(double stop, double heartbeat, double slack, double evict)
    {
        var timings = WorkloadTimings.ForMarket(TimeSpan.FromSeconds(stop));
        Assert.Equal(Seconds(heartbeat, stop, slack, stop, evict), timings);
        Assert.Empty(timings.Validate());
    }

    [Fact]
    public void Any_stop_after_the_market_accepts_derives_a_valid_chain()
    {
        // --workload-stop-after takes 0.3 s to 1 day, to the tick.
        Gen.Long[TimeSpan.FromMilliseconds(300).Ticks, TimeSpan.FromDays(1).Ticks].Sample(ticks =>
            Assert.Empty(WorkloadTimings.ForMarket(TimeSpan.FromTicks(ticks)).Validate()), iter: 5000);
    }

    [Fact]
    public void The_market_must_not_replace_a_copy_before_its_provider_stopped_it()
    {
        Assert.Empty(Seconds(1, 5, 1, 5, 6).Validate());
        var errors = Seconds(1, 5, 1, 5, 5.999).Validate();
        Assert.Contains("must not exceed evict-after", Assert.Single(errors), StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => Seconds(1, 5, 1, 5, 5.999).EnsureValid());
    }

    [Fact]
    public void The_slack_must_cover_the_clock_drift_over_stop_after()
    {
        Assert.Contains("clock drift over provider stop-after", Assert.Single(Seconds(10, 100, 0.9, 100, 200).Validate()), StringComparison.Ordinal);
        Assert.Empty(Seconds(10, 100, 1, 100, 200).Validate());
    }

    [Fact]
    public void Suspicion_comes_no_later_than_eviction()
    {
        Assert.Contains("must not exceed evict-after", Seconds(1, 5, 1, 10, 9).Validate().Single(), StringComparison.Ordinal);
    }

    [Fact]
    public void Two_lost_heartbeats_must_not_stop_a_healthy_copy()
    {
        Assert.Contains("3 x the heartbeat interval", Seconds(2, 5, 1, 10, 20).Validate().Single(), StringComparison.Ordinal);
    }

    [Fact]
    public void Non_positive_values_are_refused()
    {
        Assert.Equal(5, Seconds(0, 0, 0, 0, -1).Validate().Count);
    }
}
