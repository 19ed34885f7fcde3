namespace Coinop.Core.Routing;

/// <summary>
/// A bounded waiting line shared by several consumers: each consumer's items wait in arrival order, and consumers take
/// turns — the one served least recently goes first — so one consumer's burst cannot starve another. Pure and not
/// thread-safe: the market's capacity queue holds it under a lock and decides what can be served.
/// </summary>
/// <typeparam name="T">What waits (compared by reference).</typeparam>
public sealed class FairQueue<T>(int capacity)
    where T : class
{
    private readonly Dictionary<string, LinkedList<T>> _byConsumer = new(StringComparer.Ordinal);

    // Consumers with waiting items, in turn order: the head is served next.
    private readonly LinkedList<string> _turns = new();

    public int Capacity { get; } = capacity > 0 ? capacity : throw new ArgumentOutOfRangeException(nameof(capacity));

    public int Count { get; private set; }

    /// <summary>Queues <paramref name="item"/> behind the consumer's earlier items; false when the queue is full.</summary>
    public bool TryEnqueue(string consumer, T item)
    {
        if (Count >= Capacity)
        {
            return false;
        }

        if (!_byConsumer.TryGetValue(consumer, out var items))
        {
            items = new LinkedList<T>();
            _byConsumer[consumer] = items;
            _turns.AddLast(consumer); // a newcomer waits for its turn behind everyone already waiting
        }

        items.AddLast(item);
        Count++;
        return true;
    }

    /// <summary>Removes a waiting item (its consumer went away); false when it is not waiting.</summary>
    public bool Remove(string consumer, T item)
    {
        if (!_byConsumer.TryGetValue(consumer, out var items) || !items.Remove(item))
        {
            return false;
        }

        Count--;
        if (items.Count == 0)
        {
            _byConsumer.Remove(consumer);
            _turns.Remove(consumer);
        }

        return true;
    }

    /// <summary>
    /// Takes the next item to serve: consumers in turn, each its earliest item that <paramref name="canServe"/> accepts
    /// (asked at most once per item; it may take a resource for the item). The consumer served goes to the back of the
    /// turns. Null when nothing waiting can be served now; at most <paramref name="maxTries"/> items are offered.
    /// </summary>
    public T? TakeNext(Func<T, bool> canServe, int maxTries = int.MaxValue)
    {
        var tries = 0;
        for (var turn = _turns.First; turn is not null && tries < maxTries; turn = turn.Next)
        {
            var items = _byConsumer[turn.Value];
            for (var node = items.First; node is not null && tries < maxTries; node = node.Next)
            {
                tries++;
                if (!canServe(node.Value))
                {
                    continue;
                }

                var item = node.Value;
                items.Remove(node);
                Count--;
                _turns.Remove(turn);
                if (items.Count == 0)
                {
                    _byConsumer.Remove(turn.Value);
                }
                else
                {
                    _turns.AddLast(turn);
                }

                return item;
            }
        }

        return null;
    }

    /// <summary>The waiting items in the order they would be served if every one could be.</summary>
    public IEnumerable<T> InServiceOrder()
    {
        var copies = new List<(string Consumer, Queue<T> Items)>();
        foreach (var consumer in _turns)
        {
            copies.Add((consumer, new Queue<T>(_byConsumer[consumer])));
        }

        var ring = new Queue<(string Consumer, Queue<T> Items)>(copies);
        while (ring.TryDequeue(out var next))
        {
            yield return next.Items.Dequeue();
            if (next.Items.Count > 0)
            {
                ring.Enqueue(next);
            }
        }
    }
}
