using Coinop.Core.Cluster;
using CsCheck;

namespace Coinop.Core.Tests.Cluster;

/// <summary>
/// Random histories of providers linking to nodes, links closing, nodes dying, and writes made under old and new epochs,
/// driving <see cref="LinkRules"/> and checking the single-writer guarantees after every step.
/// </summary>
public class LinkRulesProperties
{
    private static readonly string[] Nodes = ["n1", "n2", "n3"];
    private static readonly DateTimeOffset Start = new(2026, 12, 1, 12, 0, 0, TimeSpan.Zero);

    private abstract record Op;

    private sealed record Claim(int Node) : Op;

    private sealed record Close(int Node, int EpochBack) : Op;

    private sealed record Write(int Node, int EpochBack) : Op;

    private sealed record Kill(int Node) : Op;

    private sealed record Revive(int Node) : Op;

    private sealed record Advance(int Seconds) : Op;

    private sealed record Sweep : Op;

    private static readonly Gen<Op> Ops = Gen.Frequency(
        (5, Gen.Int[0, 2].Select(n => (Op)new Claim(n))),
        (3, Gen.Select(Gen.Int[0, 2], Gen.Int[0, 3], (n, b) => (Op)new Close(n, b))),
        (6, Gen.Select(Gen.Int[0, 2], Gen.Int[0, 3], (n, b) => (Op)new Write(n, b))),
        (1, Gen.Int[0, 2].Select(n => (Op)new Kill(n))),
        (1, Gen.Int[0, 2].Select(n => (Op)new Revive(n))),
        (2, Gen.Int[0, 20].Select(s => (Op)new Advance(s))),
        (2, Gen.Const((Op)new Sweep())));

    [Fact]
    public void Each_epoch_has_one_holder_and_only_the_current_epoch_writes()
    {
        Ops.Array[1, 60].Sample(Run, iter: 3000);
    }

    private static void Run(Op[] ops)
    {
        var now = Start;
        var nodes = Nodes.ToDictionary(n => n, n => new MarketNode(n, "i1", "http://" + n, "http://lb", NodeState.Ready, Start, Start, Start.AddYears(1)));
        ProviderLink? link = null;
        var claimer = new Dictionary<long, string>(); // who claimed each epoch, ever

        foreach (var op in ops)
        {
            var before = link;
            long EpochAt(int back) => Math.Max(0, (link?.Epoch ?? 0) - back);
            switch (op)
            {
                case Claim c:
                    link = LinkRules.Claim(link, "p1", Nodes[c.Node], now);
                    Assert.Equal((before?.Epoch ?? 0) + 1, link.Epoch); // every new link moves the epoch on
                    Assert.False(claimer.ContainsKey(link.Epoch));      // an epoch is claimed once
                    claimer[link.Epoch] = link.NodeId;
                    Assert.True(link.IsOpen);
                    break;
                case Close c:
                    var closed = LinkRules.Close(link, Nodes[c.Node], EpochAt(c.EpochBack), now);
                    if (closed is not null)
                    {
                        Assert.True(LinkRules.Holds(before, Nodes[c.Node], EpochAt(c.EpochBack))); // only the holder closes its link
                        Assert.Equal(before!.Epoch, closed.Epoch);
                        link = closed;
                    }

                    break;
                case Write w:
                    var epoch = EpochAt(w.EpochBack);
                    var counts = LinkRules.IsCurrent(link, epoch);
                    // A write counts exactly when its epoch is the newest claim; an older epoch never does again.
                    Assert.Equal(link is not null && epoch == link.Epoch && epoch >= 1, counts);
                    if (LinkRules.Holds(link, Nodes[w.Node], epoch))
                    {
                        Assert.Equal(claimer[epoch], Nodes[w.Node]); // the holder of an epoch is the node that claimed it
                        Assert.True(link!.IsOpen);
                    }

                    break;
                case Kill k:
                    nodes[Nodes[k.Node]] = nodes[Nodes[k.Node]] with { ExpiresAt = now };
                    break;
                case Revive r:
                    nodes[Nodes[r.Node]] = nodes[Nodes[r.Node]] with { ExpiresAt = now.AddYears(1) };
                    break;
                case Advance a:
                    now = now.AddSeconds(a.Seconds);
                    break;
                case Sweep:
                    var holder = link is null ? null : nodes[link.NodeId];
                    var swept = LinkRules.CloseForDeadNode(link, holder, now);
                    if (swept is not null)
                    {
                        Assert.False(holder!.IsLiveAt(now)); // a live node's link is never closed for it
                        Assert.Equal((before!.ProviderId, before.NodeId, before.Epoch), (swept.ProviderId, swept.NodeId, swept.Epoch));
                        link = swept;
                    }

                    break;
            }

            // The epoch never goes back, and the link row always names the node that claimed its epoch.
            Assert.True((link?.Epoch ?? 0) >= (before?.Epoch ?? 0));
            if (link is not null)
            {
                Assert.Equal(claimer[link.Epoch], link.NodeId);
                foreach (var node in Nodes)
                {
                    for (var e = 0L; e <= link.Epoch; e++)
                    {
                        if (LinkRules.Holds(link, node, e))
                        {
                            Assert.Equal((link.NodeId, link.Epoch), (node, e)); // at most one (node, epoch) holds at any time
                        }
                    }
                }

                if (LinkRules.IsRoutable(link, nodes[link.NodeId], now))
                {
                    Assert.True(link.IsOpen && nodes[link.NodeId].IsLiveAt(now));
                }
            }
        }
    }

    [Fact]
    public void A_link_of_a_node_that_left_or_whose_heartbeat_lapsed_is_not_routable()
    {
        var link = LinkRules.Claim(null, "p1", "n1", Start);
        var node = new MarketNode("n1", "i1", "http://n1", "http://lb", NodeState.Ready, Start, Start, Start.AddSeconds(10));
        Assert.True(LinkRules.IsRoutable(link, node, Start.AddSeconds(9)));
        Assert.False(LinkRules.IsRoutable(link, node, Start.AddSeconds(10)));
        Assert.False(LinkRules.IsRoutable(link, node with { State = NodeState.Draining }, Start));
        Assert.False(LinkRules.IsRoutable(link, node with { State = NodeState.Left }, Start));
        Assert.False(LinkRules.IsRoutable(link, null, Start));
        Assert.False(LinkRules.IsRoutable(link with { ClosedAt = Start }, node, Start));
    }

    [Fact]
    public void A_node_stops_acting_one_heartbeat_before_others_could_count_it_dead()
    {
        var timings = new NodeTimings(TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(10));
        Assert.Equal(Start.AddSeconds(8), timings.SelfExpiry(Start));
        Assert.Empty(timings.Validate());
        Assert.NotEmpty(new NodeTimings(TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(10)).Validate());
    }
}
