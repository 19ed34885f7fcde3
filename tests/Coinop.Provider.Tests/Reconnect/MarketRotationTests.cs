using Coinop.Provider.Reconnect;

namespace Coinop.Provider.Tests.Reconnect;

public class MarketRotationTests
{
    private static ReconnectBackoff Backoff() => new(unitRandom: () => 0.5); // jitter factor exactly 1.0

    [Fact]
    public void A_link_that_ends_moves_on_to_the_next_node_after_the_initial_delay()
    {
        var rotation = new MarketRotation(["http://a:1", "http://b:2/", "http://c:3"], Backoff());
        Assert.Equal("http://a:1", rotation.Current);
        Assert.Equal(TimeSpan.FromSeconds(1), rotation.AfterSession());
        Assert.Equal("http://b:2", rotation.Current);
        rotation.AfterSession();
        rotation.AfterSession();
        Assert.Equal("http://a:1", rotation.Current); // round and round
    }

    [Fact]
    public void Failures_escalate_only_once_every_node_failed_in_a_row()
    {
        var rotation = new MarketRotation(["http://a", "http://b", "http://c"], Backoff());
        var delays = Enumerable.Range(0, 9).Select(_ => rotation.AfterFailure().TotalSeconds).ToArray();
        Assert.Equal([1, 1, 1, 1, 1, 2, 1, 1, 4], delays);
        Assert.Equal(TimeSpan.FromSeconds(1), rotation.AfterSession()); // a good link resets it
        Assert.Equal(TimeSpan.FromSeconds(1), rotation.AfterFailure());
    }

    [Fact]
    public void With_one_url_it_is_the_plain_backoff()
    {
        var rotation = new MarketRotation(["http://a"], Backoff());
        Assert.Equal([1, 2, 4, 8], Enumerable.Range(0, 4).Select(_ => rotation.AfterFailure().TotalSeconds));
        Assert.Equal("http://a", rotation.Current);
    }

    [Fact]
    public void Nodes_the_market_names_are_tried_after_the_configured_ones_and_garbage_is_ignored()
    {
        var rotation = new MarketRotation(["http://lb:8080"], Backoff());
        rotation.Learn(["http://n1:1", "not a url", "ftp://n2", "http://lb:8080/", "http://n3:3?x=1", "http://n2:2"]);
        Assert.Equal(["http://lb:8080", "http://n1:1", "http://n2:2"], rotation.Urls);
        rotation.AfterSession();
        Assert.Equal("http://n1:1", rotation.Current);

        // n1 is no longer named: it stays current until the link moves on, and the new list follows.
        rotation.Learn(["http://n2:2", "http://n4:4"]);
        Assert.Equal("http://n1:1", rotation.Current);
        rotation.AfterSession();
        Assert.Equal("http://n2:2", rotation.Current);
        rotation.Learn(null);
        Assert.Equal(["http://lb:8080", "http://n2:2"], rotation.Urls);
    }

    [Fact]
    public void A_hostile_market_cannot_grow_the_list_without_bound()
    {
        var rotation = new MarketRotation(["http://a"], Backoff());
        rotation.Learn(Enumerable.Range(0, 10_000).Select(i => $"http://n{i}:1"));
        Assert.Equal(1 + MarketRotation.MaxLearned, rotation.Urls.Count);
    }

    [Fact]
    public void At_least_one_url_is_needed()
    {
        Assert.Throws<ArgumentException>(() => new MarketRotation(["not a url"], Backoff()));
    }

    [Fact]
    public void The_market_can_send_the_provider_to_a_node_it_knows_and_nowhere_else()
    {
        var rotation = new MarketRotation(["http://a", "http://b"], Backoff());
        rotation.Learn(["http://c/"]);
        rotation.AfterSession();
        Assert.True(rotation.MoveTo("http://c"));
        Assert.Equal("http://c", rotation.Current);
        Assert.False(rotation.MoveTo("http://evil.example"));
        Assert.False(rotation.MoveTo("not a url"));
        Assert.False(rotation.MoveTo(null));
        Assert.Equal("http://c", rotation.Current);
    }
}
