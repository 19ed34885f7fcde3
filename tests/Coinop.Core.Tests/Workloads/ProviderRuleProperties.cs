using Coinop.Core.Protocol;
using Coinop.Core.Workloads;
using CsCheck;

namespace Coinop.Core.Tests.Workloads;

/// <summary>
/// The provider's two rules on their own, under random schedules: <see cref="StopAfterRule"/> never lets a copy run past
/// stop-after from the send of the last heartbeat the market renewed it with (the bound the market's eviction relies on),
/// nor stops it earlier; <see cref="ReportOutbox{TReport}"/> never counts a report delivered that did not arrive, keeps
/// the order on each link, and delivers everything once links stay up.
/// </summary>
public class ProviderRuleProperties
{
    private static readonly TimeSpan StopAfter = TimeSpan.FromSeconds(10);

    private abstract record RuleOp;

    private sealed record Pass(int Ms) : RuleOp;

    private sealed record SendHeartbeat : RuleOp;

    /// <summary>The market answers the <paramref name="Nth"/>-oldest unanswered heartbeat (the others stay unanswered or were lost), renewing the copy or not.</summary>
    private sealed record Answer(int Nth, bool Renew) : RuleOp;

    private static readonly Gen<RuleOp> RuleOps = Gen.Frequency(
        (6, Gen.Int[1, 4000].Select(ms => (RuleOp)new Pass(ms))),
        (4, Gen.Const((RuleOp)new SendHeartbeat())),
        (4, Gen.Select(Gen.Int[0, 3], Gen.Int[0, 9], (n, r) => (RuleOp)new Answer(n, r != 0))));

    [Fact]
    public void A_copy_stops_exactly_stop_after_past_the_send_of_its_last_renewed_heartbeat()
    {
        Gen.Select(RuleOps.Array[1, 120], Gen.Int[1, 3]).Sample((ops, epoch) =>
        {
            var rule = new StopAfterRule();
            var now = TimeSpan.FromSeconds(100);
            Assert.Null(rule.Start("w", epoch, StopAfter, now));
            var deadline = now + StopAfter; // the start's arrival counts until the first renewal
            var unanswered = new List<(long Seq, TimeSpan SentAt)>();
            long seq = 0;
            TimeSpan? stoppedAt = null;
            foreach (var op in ops)
            {
                switch (op)
                {
                    case Pass p:
                        now += TimeSpan.FromMilliseconds(p.Ms);
                        break;
                    case SendHeartbeat:
                        var named = rule.Heartbeat(++seq, now);
                        Assert.Equal(stoppedAt is null, named.Contains(new CopyRef("w", epoch)));
                        unanswered.Add((seq, now));
                        break;
                    case Answer a when unanswered.Count > 0:
                        var (answered, sentAt) = unanswered[Math.Min(a.Nth, unanswered.Count - 1)];
                        unanswered.RemoveAll(u => u.Seq <= answered); // answers come in order: older ones are lost for good
                        rule.Acknowledged(answered, a.Renew ? [new CopyRef("w", epoch), new CopyRef("w", epoch + 1)] : []);
                        if (a.Renew && stoppedAt is null && sentAt + StopAfter > deadline)
                        {
                            deadline = sentAt + StopAfter;
                        }

                        break;
                }

                var due = rule.Due(now);
                if (stoppedAt is null && now >= deadline)
                {
                    // Safety: the copy is stopped as soon as the deadline the market computes from the send time has passed.
                    var stopped = Assert.Single(due);
                    Assert.Equal(("w", epoch), (stopped.WorkloadId, stopped.Epoch));
                    Assert.True(stopped.Silent >= StopAfter);
                    stoppedAt = now;
                }
                else
                {
                    // Liveness: never before it, and only once.
                    Assert.Empty(due);
                }
            }

            var end = rule.Ended("w", epoch);
            Assert.Equal(stoppedAt is null ? CopyEndReport.Exited : CopyEndReport.Lost, end!.Value.Report);
            Assert.Equal(0, rule.Count);
        }, iter: 2000);
    }

    [Fact]
    public void A_copy_the_market_stopped_is_reported_as_nothing_and_a_stale_start_is_refused()
    {
        var rule = new StopAfterRule();
        Assert.Null(rule.Start("w", 2, StopAfter, TimeSpan.Zero));
        Assert.NotNull(rule.Start("w", 2, StopAfter, TimeSpan.Zero));
        Assert.NotNull(rule.Start("w", 1, StopAfter, TimeSpan.Zero));
        Assert.False(rule.StopByMarket("w", 1));
        Assert.True(rule.StopByMarket("w", 2));
        Assert.Empty(rule.Heartbeat(1, TimeSpan.FromSeconds(1)));
        Assert.Empty(rule.Due(TimeSpan.FromHours(1)));
        Assert.Null(rule.Ended("w", 1));
        Assert.Equal(CopyEndReport.None, rule.Ended("w", 2)!.Value.Report);
    }

    private abstract record OutboxOp;

    private sealed record AddReport : OutboxOp;

    private sealed record SendNext : OutboxOp;

    private sealed record SendHeartbeatFrame : OutboxOp;

    private sealed record DeliverAnswers : OutboxOp;

    private sealed record BreakLink : OutboxOp;

    private sealed record Reconnect : OutboxOp;

    private static readonly Gen<OutboxOp> OutboxOps = Gen.Frequency(
        (4, Gen.Const((OutboxOp)new AddReport())),
        (5, Gen.Const((OutboxOp)new SendNext())),
        (3, Gen.Const((OutboxOp)new SendHeartbeatFrame())),
        (3, Gen.Const((OutboxOp)new DeliverAnswers())),
        (1, Gen.Const((OutboxOp)new BreakLink())),
        (1, Gen.Const((OutboxOp)new Reconnect())));

    [Fact]
    public void The_outbox_never_counts_a_lost_report_as_delivered_and_keeps_order_per_link()
    {
        OutboxOps.Array[1, 150].Sample(ops =>
        {
            var world = new OutboxWorld();
            foreach (var op in ops)
            {
                world.Apply(op);
                world.Check();
            }

            // Heal for good: a new link that never breaks, and the agent keeps sending and heartbeating.
            world.Apply(new Reconnect());
            for (var i = 0; i < 3 * world.Added + 5; i++)
            {
                world.Apply(new SendNext());
                world.Apply(new SendHeartbeatFrame());
                world.Apply(new DeliverAnswers());
                world.Check();
            }

            Assert.Equal(0, world.Outbox.Pending);
            Assert.Equal(0, world.Outbox.Unconfirmed);
            Assert.Equal(Enumerable.Range(1, world.Added), world.Delivered.Distinct().Order());
        }, iter: 2000);
    }

    /// <summary>One agent's outbox, links that deliver frames in order until they break, and a market that answers heartbeats.</summary>
    private sealed class OutboxWorld
    {
        private readonly List<long> _answers = []; // answers to heartbeats, on their way back over the current link
        private Link _link = new();
        private long _seq;

        public ReportOutbox<Report> Outbox { get; } = new();

        public int Added { get; private set; }

        public List<int> Delivered { get; } = [];

        public void Apply(OutboxOp op)
        {
            switch (op)
            {
                case AddReport:
                    Outbox.Add(new Report(++Added));
                    break;
                case SendNext when Outbox.Next() is { } next:
                    Assert.Same(_link, next.Link);
                    Outbox.Sent(next.Report, next.Link, _seq + 1);
                    if (!_link.Broken)
                    {
                        Assert.True(_link.LastDelivered < next.Report.Number, "reports out of order on one link");
                        _link.LastDelivered = next.Report.Number;
                        Delivered.Add(next.Report.Number);
                    }

                    break;
                case SendHeartbeatFrame:
                    if (!_link.Broken)
                    {
                        _answers.Add(++_seq);
                    }
                    else
                    {
                        _seq++;
                    }

                    break;
                case DeliverAnswers:
                    foreach (var answered in _answers)
                    {
                        Outbox.Acknowledged(_link, answered);
                    }

                    _answers.Clear();
                    break;
                case BreakLink:
                    _link.Broken = true;
                    _answers.Clear();
                    break;
                case Reconnect:
                    Outbox.Detach(_link);
                    _link = new Link();
                    _answers.Clear();
                    Outbox.Attach(_link);
                    break;
            }
        }

        /// <summary>Whatever the outbox no longer holds (pending or unconfirmed) must have arrived.</summary>
        public void Check()
        {
            var held = Outbox.Held.Select(r => r.Number).ToHashSet();
            var lost = Enumerable.Range(1, Added).Where(n => !held.Contains(n) && !Delivered.Contains(n)).ToList();
            Assert.True(lost.Count == 0, $"reports {string.Join(", ", lost)} let go of without arriving");
        }

        private sealed class Link
        {
            public bool Broken { get; set; }

            public int LastDelivered { get; set; }
        }
    }

    private sealed record Report(int Number);
}
