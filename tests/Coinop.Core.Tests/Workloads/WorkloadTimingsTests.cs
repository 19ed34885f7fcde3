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
