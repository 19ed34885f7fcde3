using Coinop.Core.Routing;
using CsCheck;

namespace Coinop.Core.Tests.Routing;

/// <summary>The capacity queue's waiting line, driven with random arrivals, departures and services by several consumers.</summary>
public class FairQueueProperties
{
    private static readonly string[] Consumers = ["a", "b", "c", "d"];

    private sealed class Item(string consumer, int seq, bool servable)
    {
        public string Consumer { get; } = consumer;

        public int Seq { get; } = seq;

        public bool Servable { get; } = servable;

        public int Asked { get; set; }

        public override string ToString() => $"{Consumer}{Seq}{(Servable ? "" : "!")}";
    }

    private abstract record Op;

    private sealed record Arrive(int Consumer, bool Servable) : Op;

    private sealed record Leave(int Index) : Op;

    private sealed record Serve : Op;

    private static readonly Gen<Op> Ops = Gen.Frequency(
        (5, Gen.Select(Gen.Int[0, Consumers.Length - 1], Gen.Frequency((6, Gen.Const(true)), (1, Gen.Const(false))), (c, s) => (Op)new Arrive(c, s))),
        (1, Gen.Int[0, 100].Select(i => (Op)new Leave(i))),
        (4, Gen.Const((Op)new Serve())));

    [Fact]
    public void The_queue_is_bounded_serves_only_what_waits_and_what_can_be_served_and_asks_each_item_at_most_once()
    {
        Gen.Select(Gen.Int[1, 12], Ops.List[1, 80]).Sample((capacity, ops) =>
        {
            var queue = new FairQueue<Item>(capacity);
            var waiting = new List<Item>();
            var seq = 0;
            foreach (var op in ops)
            {
                switch (op)
                {
                    case Arrive a:
                        var item = new Item(Consumers[a.Consumer], seq++, a.Servable);
                        var accepted = queue.TryEnqueue(item.Consumer, item);
                        if (accepted != (waiting.Count < capacity))
                        {
                            return false;
                        }

                        if (accepted)
                        {
                            waiting.Add(item);
                        }

                        break;
                    case Leave l when waiting.Count > 0:
                        var leaving = waiting[l.Index % waiting.Count];
                        if (!queue.Remove(leaving.Consumer, leaving) || queue.Remove(leaving.Consumer, leaving))
                        {
                            return false;
                        }

                        waiting.Remove(leaving);
                        break;
                    case Serve:
                        foreach (var w in waiting)
                        {
                            w.Asked = 0;
                        }

                        var served = queue.TakeNext(i => ++i.Asked > 0 && i.Servable);
                        if (waiting.Any(w => w.Asked > 1) || (served is null ? waiting.Any(w => w.Servable) : !served.Servable || !waiting.Remove(served)))
                        {
                            return false;
                        }

                        break;
                }

                if (queue.Count != waiting.Count || queue.Count > capacity)
                {
                    return false;
                }
            }

            return true;
        });
    }

    [Fact]
    public void Each_consumer_is_served_in_arrival_order_and_no_consumer_is_served_twice_while_another_waits()
    {
        Ops.List[1, 120].Sample(ops =>
        {
            var queue = new FairQueue<Item>(64);
            var seq = 0;
            var lastServed = new Dictionary<string, int>();
            // For each waiting consumer: how many services of others happened since it last got a turn while it waited.
            var waitingSince = new Dictionary<string, HashSet<string>>();
            var waiting = new List<Item>();
            foreach (var op in ops)
            {
                switch (op)
                {
                    case Arrive a:
                        var item = new Item(Consumers[a.Consumer], seq++, servable: true);
                        if (queue.TryEnqueue(item.Consumer, item))
                        {
                            waiting.Add(item);
                            waitingSince.TryAdd(item.Consumer, []);
                        }

                        break;
                    case Leave l when waiting.Count > 0:
                        var leaving = waiting[l.Index % waiting.Count];
                        queue.Remove(leaving.Consumer, leaving);
                        waiting.Remove(leaving);
                        if (!waiting.Any(w => w.Consumer == leaving.Consumer))
                        {
                            waitingSince.Remove(leaving.Consumer);
                        }

                        break;
                    case Serve:
                        var served = queue.TakeNext(_ => true);
                        if (served is null)
                        {
                            if (waiting.Count > 0)
                            {
                                return false;
                            }

                            break;
                        }

                        // Arrival order within the consumer.
                        if (lastServed.TryGetValue(served.Consumer, out var previous) && previous > served.Seq)
                        {
                            return false;
                        }

                        if (waiting.Where(w => w.Consumer == served.Consumer).Min(w => w.Seq) != served.Seq)
                        {
                            return false;
                        }

                        lastServed[served.Consumer] = served.Seq;
                        waiting.Remove(served);

                        // Fairness: a consumer served twice while another waited the whole time is unfair.
                        foreach (var (consumer, servedMeanwhile) in waitingSince)
                        {
                            if (consumer != served.Consumer && !servedMeanwhile.Add(served.Consumer))
                            {
                                return false;
                            }
                        }

                        waitingSince.Remove(served.Consumer);
                        if (waiting.Any(w => w.Consumer == served.Consumer))
                        {
                            waitingSince[served.Consumer] = [];
                        }

                        break;
                }
            }

            return true;
        });
    }

    [Fact]
    public void A_burst_from_one_consumer_waits_behind_another_consumers_single_request()
    {
        var queue = new FairQueue<string>(16);
        foreach (var i in Enumerable.Range(1, 5))
        {
            queue.TryEnqueue("x", "x" + i);
        }

        queue.TryEnqueue("y", "y1");
        queue.TryEnqueue("y", "y2");

        Assert.Equal(["x1", "y1", "x2", "y2", "x3", "x4", "x5"], queue.InServiceOrder());
        var order = new List<string>();
        while (queue.TakeNext(_ => true) is { } next)
        {
            order.Add(next);
        }

        Assert.Equal(["x1", "y1", "x2", "y2", "x3", "x4", "x5"], order);
    }
}
