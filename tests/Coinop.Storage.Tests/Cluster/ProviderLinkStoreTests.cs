using Coinop.Core.Cluster;
using Coinop.Storage.Cluster;
using Coinop.Storage.Providers;

namespace Coinop.Storage.Tests.Cluster;

public class ProviderLinkStoreTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 1, 12, 0, 0, TimeSpan.Zero);

    private static async Task<ProviderRegistryStore> EnrolledAsync(Database database, string providerId)
    {
        var registry = new ProviderRegistryStore(database);
        await registry.UpsertSeenAsync(new ProviderRecord(providerId, Guid.NewGuid().ToByteArray(), providerId, Now, Now, Online: true), TestContext.Current.CancellationToken);
        return registry;
    }

    private static LinkPublication Busy(string providerId, long epoch, int inFlight) =>
        new(providerId, epoch, new LinkFigures(true, inFlight, 42, null, null), """{"type":"capabilities","models":[],"max_concurrent":4,"agent_version":"t"}""");

    [Theory]
    [MemberData(nameof(Stores.Dialects), MemberType = typeof(Stores))]
    public async Task Each_new_link_takes_a_new_epoch_and_writes_under_an_old_one_are_refused(SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var store = await Stores.CreateAsync(dialect, ct);
        var registry = await EnrolledAsync(store.Database, "p1");
        var links = new ProviderLinkStore(store.Database);

        var first = await links.ClaimAsync("p1", "n1", "p1", Now, ct);
        Assert.Equal((1L, "n1"), (first.Epoch, first.NodeId));
        await links.PublishAsync("n1", [Busy("p1", 1, 3)], Now, ct);
        Assert.Equal(3, (await links.ListOpenAsync(ct)).Single().Figures.InFlight);

        var second = await links.ClaimAsync("p1", "n2", "p1", Now.AddSeconds(1), ct);
        Assert.Equal((2L, "n2"), (second.Epoch, second.NodeId));

        // Node 1 still thinks it holds epoch 1: its figures, its close and its results are all refused now.
        await links.PublishAsync("n1", [Busy("p1", 1, 7)], Now.AddSeconds(2), ct);
        Assert.Equal(0, (await links.ListOpenAsync(ct)).Single().Figures.InFlight);
        Assert.False(await links.CloseAsync("p1", "n1", 1, Now.AddSeconds(2), ct));
        Assert.True((await registry.FindAsync("p1", ct))!.Online);
        Assert.False(await store.Database.WriteAsync((c, t) => links.IsCurrentAsync(c, t, "p1", 1, ct), ct));
        Assert.True(await store.Database.WriteAsync((c, t) => links.IsCurrentAsync(c, t, "p1", 2, ct), ct));

        // The holder's own close counts; after it, a result of epoch 2 that was already on its way still does.
        Assert.True(await links.CloseAsync("p1", "n2", 2, Now.AddSeconds(3), ct));
        Assert.False((await registry.FindAsync("p1", ct))!.Online);
        Assert.Empty(await links.ListOpenAsync(ct));
        Assert.True(await store.Database.WriteAsync((c, t) => links.IsCurrentAsync(c, t, "p1", 2, ct), ct));
    }

    [Theory]
    [MemberData(nameof(Stores.Dialects), MemberType = typeof(Stores))]
    public async Task Concurrent_links_of_one_provider_get_distinct_epochs(SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var store = await Stores.CreateAsync(dialect, ct);
        await EnrolledAsync(store.Database, "p1");
        var links = new ProviderLinkStore(store.Database);

        var claimed = await Task.WhenAll(Enumerable.Range(0, 12).Select(i => links.ClaimAsync("p1", "n" + (i % 3), "p1", Now, ct)));

        Assert.Equal(Enumerable.Range(1, 12).Select(e => (long)e), claimed.Select(c => c.Epoch).Order());
        var last = claimed.MaxBy(c => c.Epoch)!;
        Assert.Equal(last.NodeId, (await links.FindAsync("p1", ct))!.NodeId);
    }

    [Theory]
    [MemberData(nameof(Stores.Dialects), MemberType = typeof(Stores))]
    public async Task Links_of_a_dead_node_are_closed_for_it_and_a_restarted_node_takes_its_leftovers_back(SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var store = await Stores.CreateAsync(dialect, ct);
        var registry = await EnrolledAsync(store.Database, "p1");
        await EnrolledAsync(store.Database, "p2");
        var nodes = new NodeStore(store.Database);
        var links = new ProviderLinkStore(store.Database);
        await nodes.JoinAsync(new MarketNode("n1", "i1", "http://n1", "http://lb", NodeState.Ready, Now, Now, Now.AddSeconds(10)), ct);
        await nodes.JoinAsync(new MarketNode("n2", "i1", "http://n2", "http://lb", NodeState.Ready, Now, Now, Now.AddSeconds(10)), ct);
        await links.ClaimAsync("p1", "n1", "p1", Now, ct);
        await links.ClaimAsync("p2", "n2", "p2", Now, ct);
        await links.PublishAsync("n2", [Busy("p2", 1, 1)], Now, ct);

        // n2 restarts: its link is not routable until p2 comes back.
        var back = await links.TakeBackAsync("n2", ct);
        Assert.Equal([("p2", 1L)], back);
        Assert.False((await links.ListOpenAsync(ct)).Single(l => l.Link.ProviderId == "p2").Figures.Accepting);

        // Each node reads only the links the other holds.
        Assert.Equal(["p2"], (await links.ListOpenElsewhereAsync("n1", ct)).Select(l => l.Link.ProviderId));
        Assert.Equal(["p1"], (await links.ListOpenElsewhereAsync("n2", ct)).Select(l => l.Link.ProviderId));

        // n1 keeps heartbeating, n2 does not: at +11 s only n2's link is closed.
        Assert.True(await nodes.HeartbeatAsync("n1", "i1", Now.AddSeconds(5), Now.AddSeconds(15), null, ct));
        Assert.False(await nodes.HeartbeatAsync("n1", "other-run", Now.AddSeconds(5), Now.AddSeconds(15), null, ct));
        var closed = await links.CloseForDeadNodesAsync(await nodes.ListAsync(ct), Now.AddSeconds(11), ct);
        Assert.Equal(["p2"], closed.Select(l => l.ProviderId));
        Assert.False((await registry.FindAsync("p2", ct))!.Online);
        Assert.True((await registry.FindAsync("p1", ct))!.Online);
        Assert.Equal(["p1"], (await links.ListOpenAsync(ct)).Select(l => l.Link.ProviderId));
        Assert.Empty(await links.ListOpenElsewhereAsync("n1", ct));

        // Nothing held, long gone: forgotten. n1 still holds a link: kept.
        Assert.Equal(1, await nodes.PruneAsync(Now.AddDays(2), ct));
        Assert.Equal(["n1"], (await nodes.ListAsync(ct)).Select(n => n.NodeId));
    }
}
