using System.Collections.Concurrent;
using Coinop.Core.Routing;
using Coinop.Market.Gateway;
using Microsoft.Extensions.Options;

namespace Coinop.Market.Inference;

/// <summary>How a request's wait for a provider's slot ended (cancellation aside: that is the caller's token).</summary>
public enum SlotOutcome
{
    /// <summary>A provider's slot is the request's: <see cref="SlotResult.Pick"/>.</summary>
    Acquired,

    /// <summary>The model's queue is full: answered 429 with <c>Retry-After</c>.</summary>
    QueueFull,

    /// <summary>No provider could take the request even with a free slot (gone, parked, too dear): answered 503.</summary>
    Unavailable,
}

public readonly record struct SlotResult(SlotOutcome Outcome, RoutePick Pick = default);

/// <summary>
/// Capacity: when every suitable provider of a model is at its concurrency limit, a request waits in a bounded
/// per-model queue until a slot frees, its deadline passes or its consumer goes away (its token is cancelled). The
/// line is a <see cref="FairQueue{T}"/>: each consumer's requests in arrival order, consumers in turn. A slot released
/// through <see cref="Release"/> is offered to the waiting requests at once; a periodic <see cref="Sweep"/> catches
/// capacity that came another way (a provider connected or unparked) and turns away requests no provider can take any
/// more. Nothing here holds money: a request reserves only once it has its provider.
/// </summary>
public sealed class CapacityQueue : IModelQueueDepths
{
    // Waiting requests offered a slot per pump: bounds the work a freed slot causes when most waiters cannot use it.
    private const int MaxTriesPerPump = 32;

    private readonly ConcurrentDictionary<string, ModelQueue> _queues = new(StringComparer.Ordinal);
    private readonly ProviderRouter router;
    private readonly InferenceMetrics metrics;
    private readonly TimeProvider time;
    private readonly int _capacity;
    private long _recentWaitTicks;

    public CapacityQueue(ProviderRouter router, IOptions<InferenceOptions> options, InferenceMetrics metrics, TimeProvider time)
    {
        this.router = router;
        this.metrics = metrics;
        this.time = time;
        _capacity = options.Value.MaxQueuedPerModel;
        metrics.ObserveQueues(Depths);
    }

    public int DepthOf(string model) => _queues.TryGetValue(model, out var queue) ? queue.Depth : 0;

    /// <summary>Queue depths of the models requested so far (for <c>/metrics</c>).</summary>
    public IEnumerable<KeyValuePair<string, int>> Depths()
    {
        foreach (var (model, queue) in _queues)
        {
            yield return new(model, queue.Depth);
        }
    }

    /// <summary>Seconds a consumer turned away might wait before trying again: the recent average wait, 1 to 60.</summary>
    public int RetryAfterSeconds => (int)Math.Clamp(Math.Ceiling(TimeSpan.FromTicks(Interlocked.Read(ref _recentWaitTicks)).TotalSeconds), 1, 60);

    /// <summary>
    /// A provider's slot for the request: at once when one is free and nobody waits, else after waiting its turn.
    /// Throws <see cref="OperationCanceledException"/> when <paramref name="cancellationToken"/> fires first (deadline,
    /// consumer gone); the request then has left the queue and holds no slot.
    /// </summary>
    public async ValueTask<SlotResult> AcquireAsync(RouteNeeds needs, List<IRoutableProvider> tried, string consumer, CancellationToken cancellationToken)
    {
        var queue = _queues.GetOrAdd(needs.Model, static _ => new ModelQueue());
        if (queue.Depth == 0 && router.Pick(needs, tried) is { } free)
        {
            return new SlotResult(SlotOutcome.Acquired, free);
        }

        if (router.Check(needs, tried) is not (RouteAvailability.Busy or RouteAvailability.Available))
        {
            return new SlotResult(SlotOutcome.Unavailable);
        }

        var waiter = new Waiter(needs, tried, consumer, time.GetTimestamp());
        lock (queue.Gate)
        {
            queue.Line ??= new FairQueue<Waiter>(_capacity);
            if (!queue.Line.TryEnqueue(consumer, waiter))
            {
                metrics.QueueRejected(needs.Model);
                return new SlotResult(SlotOutcome.QueueFull);
            }

            queue.Depth = queue.Line.Count;
        }

        // A slot may have freed between the pick above and joining the line: offer it now.
        Pump(queue);
        await using (cancellationToken.Register(static state => ((CancellableWait)state!).Leave(), new CancellableWait(this, queue, waiter)))
        {
            try
            {
                var result = await waiter.Done.Task.ConfigureAwait(false);
                RecordWait(waiter, result.Outcome == SlotOutcome.Acquired ? "acquired" : "unavailable");
                return result;
            }
            catch (OperationCanceledException)
            {
                RecordWait(waiter, "left");
                throw;
            }
        }
    }

    /// <summary>Gives a provider's slot back and offers it to the requests waiting for its models.</summary>
    public void Release(IRoutableProvider provider)
    {
        provider.ReleaseSlot();
        foreach (var offer in provider.Offers)
        {
            if (_queues.TryGetValue(offer.Model, out var queue) && queue.Depth > 0)
            {
                Pump(queue);
            }
        }
    }

    /// <summary>
    /// Offers free slots to every queue and turns away waiting requests that no provider can take any more (the
    /// providers left, were parked, or changed their offers): they get <see cref="SlotOutcome.Unavailable"/>.
    /// </summary>
    public void Sweep()
    {
        foreach (var queue in _queues.Values)
        {
            if (queue.Depth == 0)
            {
                continue;
            }

            Pump(queue);
            lock (queue.Gate)
            {
                foreach (var waiter in queue.Line!.InServiceOrder().ToList())
                {
                    if (router.Check(waiter.Needs, waiter.Tried) is not (RouteAvailability.Busy or RouteAvailability.Available)
                        && queue.Line.Remove(waiter.Consumer, waiter))
                    {
                        waiter.Done.TrySetResult(new SlotResult(SlotOutcome.Unavailable));
                    }
                }

                queue.Depth = queue.Line.Count;
            }
        }
    }

    private void Pump(ModelQueue queue)
    {
        lock (queue.Gate)
        {
            if (queue.Line is not { Count: > 0 } line)
            {
                return;
            }

            while (true)
            {
                RoutePick picked = default;
                var next = line.TakeNext(w =>
                {
                    if (router.Pick(w.Needs, w.Tried) is not { } pick)
                    {
                        return false;
                    }

                    picked = pick;
                    return true;
                }, MaxTriesPerPump);
                if (next is null)
                {
                    break;
                }

                // Leaving takes the same lock, so a waiter taken from the line is still waiting for this result.
                next.Done.TrySetResult(new SlotResult(SlotOutcome.Acquired, picked));
            }

            queue.Depth = line.Count;
        }
    }

    private void Leave(ModelQueue queue, Waiter waiter)
    {
        lock (queue.Gate)
        {
            if (queue.Line!.Remove(waiter.Consumer, waiter))
            {
                queue.Depth = queue.Line.Count;
                waiter.Done.TrySetCanceled();
            }
        }
    }

    private void RecordWait(Waiter waiter, string outcome)
    {
        var waited = time.GetElapsedTime(waiter.Since);
        metrics.QueueWait(waiter.Needs.Model, waited.TotalMilliseconds, outcome);
        if (outcome == "acquired")
        {
            // A moving average of waits that ended with a slot: what Retry-After tells the next consumer turned away.
            var previous = Interlocked.Read(ref _recentWaitTicks);
            Interlocked.Exchange(ref _recentWaitTicks, previous == 0 ? waited.Ticks : (previous * 7 + waited.Ticks) / 8);
        }
    }

    private sealed class ModelQueue
    {
        public readonly Lock Gate = new();

        public FairQueue<Waiter>? Line;

        /// <summary>Read without the lock by the fast path and by <c>/api/providers</c>; written under it.</summary>
        public volatile int Depth;
    }

    private sealed class Waiter(RouteNeeds needs, List<IRoutableProvider> tried, string consumer, long since)
    {
        public RouteNeeds Needs { get; } = needs;

        public List<IRoutableProvider> Tried { get; } = tried;

        public string Consumer { get; } = consumer;

        public long Since { get; } = since;

        public TaskCompletionSource<SlotResult> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private sealed class CancellableWait(CapacityQueue owner, ModelQueue queue, Waiter waiter)
    {
        public void Leave() => owner.Leave(queue, waiter);
    }
}
