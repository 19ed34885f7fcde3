using Coinop.Core.Routing;
using Microsoft.Extensions.Time.Testing;

namespace Coinop.Core.Tests.Routing;

public class ParkingTests
{
    [Fact]
    public void Three_failures_in_a_row_park_the_provider_until_the_time_is_up()
    {
        var time = new FakeTimeProvider();
        var parking = new Parking(time, threshold: 3, parkFor: TimeSpan.FromSeconds(15));

        Assert.False(parking.RecordFailure());
        Assert.False(parking.RecordFailure());
        Assert.True(parking.RecordFailure());
        Assert.True(parking.IsParked);

        time.Advance(TimeSpan.FromSeconds(14.9));
        Assert.True(parking.IsParked);
        time.Advance(TimeSpan.FromSeconds(0.1));
        Assert.False(parking.IsParked);
    }

    [Fact]
    public void A_success_resets_the_count()
    {
        var parking = new Parking(new FakeTimeProvider());
        parking.RecordFailure();
        parking.RecordFailure();
        parking.RecordSuccess();
        Assert.False(parking.RecordFailure());
        Assert.False(parking.IsParked);
    }

    [Fact]
    public void After_a_park_one_more_failure_parks_again()
    {
        var time = new FakeTimeProvider();
        var parking = new Parking(time, 3, TimeSpan.FromSeconds(15));
        for (var i = 0; i < 3; i++)
        {
            parking.RecordFailure();
        }

        time.Advance(TimeSpan.FromSeconds(16));
        Assert.False(parking.IsParked);
        Assert.True(parking.RecordFailure());
        Assert.True(parking.IsParked);
    }
}
