using Coinop.Core.Heartbeats;

namespace Coinop.Core.Tests.Heartbeats;

public class HeartbeatTimingsTests
{
    [Theory]
    [InlineData(0, 10)]
    [InlineData(10, 10)]
    [InlineData(500, 10)]
    [InlineData(501, 11)]
    [InlineData(1_000, 20)]
    [InlineData(10_000, 200)]
    [InlineData(100_000, 600)]
    public void Ttl_scales_with_the_number_of_providers_within_bounds(int providers, int expectedSeconds)
    {
        Assert.Equal(TimeSpan.FromSeconds(expectedSeconds), HeartbeatTimings.Default.TtlFor(providers));
    }

    [Fact]
    public void A_zero_rate_means_the_maximum_ttl()
    {
        var timings = HeartbeatTimings.Default with { MaxHeartbeatsPerSecond = 0 };
        Assert.Equal(TimeSpan.FromSeconds(600), timings.TtlFor(3));
    }

    [Fact]
    public void The_deadline_adds_the_grace_period()
    {
        Assert.Equal(TimeSpan.FromSeconds(20), HeartbeatTimings.Default.DeadlineAfter(TimeSpan.FromSeconds(10)));
    }
}
