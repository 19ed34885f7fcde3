using Coinop.Provider.Link;
using Microsoft.Extensions.Time.Testing;

namespace Coinop.Provider.Tests.Units;

public class LinkClockTests
{
    private static readonly TimeSpan Ttl = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan Grace = TimeSpan.FromSeconds(4);

    [Fact]
    public void Heartbeats_fall_due_every_half_ttl()
    {
        var time = new FakeTimeProvider();
        var clock = new LinkClock(time, Grace);
        clock.Start(Ttl);
        Assert.Equal(LinkDue.Nothing, clock.Next(out var wait));
        Assert.Equal(TimeSpan.FromSeconds(5), wait);

        time.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(LinkDue.Heartbeat, clock.Next(out _));
        clock.HeartbeatSent();
        clock.FrameReceived();
        Assert.Equal(LinkDue.Nothing, clock.Next(out wait));
        Assert.Equal(TimeSpan.FromSeconds(5), wait);
    }

    [Fact]
    public void The_link_is_dead_after_ttl_plus_grace_without_a_frame()
    {
        var time = new FakeTimeProvider();
        var clock = new LinkClock(time, Grace);
        clock.Start(Ttl);
        for (var i = 0; i < 2; i++)
        {
            time.Advance(TimeSpan.FromSeconds(5));
            Assert.Equal(LinkDue.Heartbeat, clock.Next(out _));
            clock.HeartbeatSent();
        }

        Assert.Equal(LinkDue.Nothing, clock.Next(out var wait));
        Assert.Equal(Grace, wait);
        time.Advance(Grace);
        Assert.Equal(LinkDue.Dead, clock.Next(out _));
    }

    [Fact]
    public void A_new_ttl_from_the_market_moves_both_deadlines()
    {
        var time = new FakeTimeProvider();
        var clock = new LinkClock(time, Grace);
        clock.Start(Ttl);
        clock.TtlChanged(TimeSpan.FromSeconds(60));
        time.Advance(TimeSpan.FromSeconds(20));
        Assert.Equal(LinkDue.Nothing, clock.Next(out var wait));
        Assert.Equal(TimeSpan.FromSeconds(10), wait);
        time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(LinkDue.Heartbeat, clock.Next(out _));
    }
}
