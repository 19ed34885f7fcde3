using Coinop.Core.Routing;
using Microsoft.Extensions.Time.Testing;

namespace Coinop.Core.Tests.Routing;

public class PeakEwmaTests
{
    [Fact]
    public void A_slower_observation_raises_the_estimate_at_once()
    {
        var time = new FakeTimeProvider();
        var ewma = new PeakEwma(time, TimeSpan.FromSeconds(10), initialMs: 50);
        ewma.Observe(400);
        Assert.Equal(400, ewma.EstimateMs);
    }

    [Fact]
    public void Faster_observations_pull_the_estimate_down_with_elapsed_time()
    {
        var time = new FakeTimeProvider();
        var ewma = new PeakEwma(time, TimeSpan.FromSeconds(10), initialMs: 400);

        ewma.Observe(100); // no time elapsed: the old estimate keeps all its weight
        Assert.Equal(400, ewma.EstimateMs, 6);

        time.Advance(TimeSpan.FromSeconds(10)); // one decay period: weight e^-1 on the old value
        ewma.Observe(100);
        Assert.Equal(100 + 300 * Math.Exp(-1), ewma.EstimateMs, 6);

        time.Advance(TimeSpan.FromMinutes(10)); // long ago: the new observation dominates
        ewma.Observe(100);
        Assert.Equal(100, ewma.EstimateMs, 3);
    }
}
