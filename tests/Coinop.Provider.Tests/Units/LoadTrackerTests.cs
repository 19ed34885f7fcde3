using Coinop.Provider.Load;
using Microsoft.Extensions.Time.Testing;

namespace Coinop.Provider.Tests.Units;

public class LoadTrackerTests
{
    [Fact]
    public void Counts_jobs_in_flight_and_those_waiting_for_a_first_byte()
    {
        var load = new LoadTracker(new FakeTimeProvider());
        load.Started();
        load.Started();
        load.FirstByte();
        var figures = load.Snapshot();
        Assert.Equal(2, figures.InFlight);
        Assert.Equal(1, figures.QueueDepth);
    }

    [Fact]
    public void Reports_latency_percentiles_throughput_and_error_rate_over_the_window()
    {
        var time = new FakeTimeProvider();
        var load = new LoadTracker(time, TimeSpan.FromSeconds(60));
        for (var i = 1; i <= 20; i++)
        {
            load.Started();
            load.FirstByte();
            load.Finished(TimeSpan.FromMilliseconds(i * 10), TimeSpan.FromSeconds(1), 50, failed: false);
        }

        load.Started();
        load.Finished(null, TimeSpan.FromSeconds(1), 0, failed: true);
        load.Started();
        load.Finished(null, TimeSpan.FromSeconds(1), 0, failed: null); // a cancellation: not the provider's failure

        var figures = load.Snapshot();
        Assert.Equal(0, figures.InFlight);
        Assert.Equal(0, figures.QueueDepth);
        Assert.Equal(100, figures.P50LatencyMs);
        Assert.Equal(190, figures.P95LatencyMs);
        Assert.Equal(50, figures.TokensPerSecond);
        Assert.Equal(Math.Round(1 / 21.0, 4), figures.ErrorRate);

        // Outside the window the figures fall back to zero.
        time.Advance(TimeSpan.FromSeconds(61));
        var later = load.Snapshot();
        Assert.Equal((0.0, 0.0, 0.0), (later.P50LatencyMs, later.TokensPerSecond, later.ErrorRate));
    }
}
