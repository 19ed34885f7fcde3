using System.Collections.Concurrent;
using System.Threading.Channels;
using Coinop.Storage.Workloads;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Coinop.Market.Workloads;

/// <summary>
/// Copies' output on its way to the store: chunks queue here (bounded: when the store falls behind, the newest output
/// is dropped rather than holding provider sessions up), are written in batches, and wake whoever follows the workload.
/// The supervisor also wakes followers when a workload ends, so a follow stops.
/// </summary>
public sealed partial class WorkloadLogFeed(IWorkloadLogStore store, ILogger<WorkloadLogFeed> logger) : BackgroundService
{
    private const int QueuedChunks = 16 * 1024;
    private const int BatchChunks = 512;

    private readonly Channel<Queued> _queue = Channel.CreateBounded<Queued>(
        new BoundedChannelOptions(QueuedChunks) { SingleReader = true, FullMode = BoundedChannelFullMode.DropWrite });
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _waiters = new(StringComparer.Ordinal);

    /// <summary>Queues a chunk; false when the queue is full and it was dropped.</summary>
    public bool TryAdd(WorkloadLogChunk chunk) => _queue.Writer.TryWrite(new Queued(chunk, null));

    /// <summary>
    /// Completes once every chunk queued before this call is stored. A follower that sees the workload ended waits for
    /// this before its last read: the copy's final output was queued before its exit was reported, but may still be
    /// on its way to the store. With the queue full (output being dropped anyway) it completes at once.
    /// </summary>
    public Task FlushedAsync(CancellationToken cancellationToken)
    {
        var flushed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        return _queue.Writer.TryWrite(new Queued(null, flushed)) ? flushed.Task.WaitAsync(cancellationToken) : Task.CompletedTask;
    }

    /// <summary>Completes when new output of the workload was stored or the workload changed, or when <paramref name="cancellationToken"/> fires.</summary>
    public Task WaitAsync(string workloadId, CancellationToken cancellationToken) =>
        _waiters.GetOrAdd(workloadId, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task.WaitAsync(cancellationToken);

    /// <summary>Wakes the workload's followers.</summary>
    public void Signal(string workloadId)
    {
        if (_waiters.TryRemove(workloadId, out var waiter))
        {
            waiter.TrySetResult();
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var batch = new List<WorkloadLogChunk>(BatchChunks);
        var flushes = new List<TaskCompletionSource>();
        try
        {
            while (await _queue.Reader.WaitToReadAsync(stoppingToken))
            {
                while (batch.Count < BatchChunks && _queue.Reader.TryRead(out var queued))
                {
                    if (queued.Chunk is { } chunk)
                    {
                        batch.Add(chunk);
                    }
                    else
                    {
                        flushes.Add(queued.Flushed!);
                    }
                }

                try
                {
                    if (batch.Count > 0)
                    {
                        await store.AppendAsync(batch, stoppingToken);
                    }
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    LogAppendFailed(logger, batch.Count, ex);
                }

                foreach (var workloadId in batch.Select(c => c.WorkloadId).Distinct(StringComparer.Ordinal))
                {
                    Signal(workloadId);
                }

                flushes.ForEach(f => f.TrySetResult());
                batch.Clear();
                flushes.Clear();
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private readonly record struct Queued(WorkloadLogChunk? Chunk, TaskCompletionSource? Flushed);
}
