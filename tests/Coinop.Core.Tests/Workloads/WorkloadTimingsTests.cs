using Coinop.Core.Workloads;

namespace Coinop.Core.Tests.Workloads;

public class WorkloadTimingsTests
{
    private static WorkloadTimings Seconds(double heartbeat, double stop, double slack, double suspect, double evict) => new(
        TimeSpan.FromSeconds(heartbeat), TimeSpan.FromSeconds(stop), TimeSpan.FromSeconds(slack),
        TimeSpan.FromSeconds(suspect), TimeSpan.FromSeconds(evict));

    [Fact]
    public void The_defaults_hold_the_single_writer_relation()
    {
        Assert.Empty(WorkloadTimings.Default.Validate());
        var lease = WorkloadTimings.Default.CopyLease;
        Assert.Empty(lease.Validate());
        Assert.Equal(WorkloadTimings.Default.EvictAfter, lease.Ttl);
    }

    [Theory]
    [InlineData(10, 10, 120, 300, 5, 105)]
    [InlineData(1, 1, 3, 6, 0.5, 1.5)]
    [InlineData(600, 10, 120, 300, 27.5, 82.5)]
    public void Market_knobs_derive_a_valid_chain(double minTtl, double grace, double suspect, double evict, double heartbeat, double stop)
    {
        var timings = WorkloadTimings.ForMarket(TimeSpan.FromSeconds(minTtl), TimeSpan.FromSeconds(grace), TimeSpan.FromSeconds(suspect), TimeSpan.FromSeconds(evict));
        Assert.Equal(Seconds(heartbeat, stop, grace, suspect, evict), timings);
        Assert.Empty(timings.Validate());
    }

    [Fact]
    public void Market_knobs_too_tight_for_the_chain_are_refused()
    {
        // Suspect-after no longer than the grace leaves no time to heartbeat before the provider must stop.
        var timings = WorkloadTimings.ForMarket(TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(30));
        Assert.Contains("heartbeat interval must be positive", timings.Validate(), StringComparer.Ordinal);
    }

    [Fact]
    public void The_provider_must_stop_before_the_market_suspects()
    {
        Assert.Empty(Seconds(1, 5, 1, 6.001, 6.001).Validate());
        var errors = Seconds(1, 5, 1, 6, 10).Validate();
        Assert.Single(errors);
        Assert.Contains("must be less than suspect-after", errors[0], StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => Seconds(1, 5, 1, 6, 10).EnsureValid());
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
