using System.Threading.Channels;
using Coinop.Storage.Jobs;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Coinop.Market.Inference;

/// <summary>
/// Writes job records off the request path: requests drop records into a bounded queue; this service stores
/// them in batches, one transaction each, and drains the queue on shutdown. A full queue (the store far
/// behind) drops records with a warning rather than slowing requests.
/// </summary>
public sealed class JobRecordWriter(IJobRecordStore store, TimeProvider time, ILogger<JobRecordWriter> logger) : BackgroundService
{
    private const int MaxBatch = 256;

    /// <summary>
    /// How long the first record of a batch waits for others. A transaction per record would cost more than the
    /// request it records (a SQLite commit is a dozen syscalls); at 1,000 requests/s this makes batches of ~50.
    /// </summary>
    private static readonly TimeSpan Gather = TimeSpan.FromMilliseconds(50);
    private readonly Channel<JobRecord> _queue = Channel.CreateBounded<JobRecord>(
        new BoundedChannelOptions(16_384) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });

    public void Add(JobRecord record)
    {
        if (!_queue.Writer.TryWrite(record))
        {
            InferenceLog.RecordDropped(logger, record.Id);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var batch = new List<JobRecord>(MaxBatch);
        // Not cancelled by stoppingToken: the loop ends when StopAsync completes the queue and it is drained.
        while (await _queue.Reader.WaitToReadAsync(CancellationToken.None))
        {
            if (_queue.Reader.Count < MaxBatch && !stoppingToken.IsCancellationRequested)
            {
                try
                {
                    await Task.Delay(Gather, time, stoppingToken);
                }
                catch (OperationCanceledException)
                {
                    // Stopping: store what is queued now.
                }
            }

            while (batch.Count < MaxBatch && _queue.Reader.TryRead(out var record))
            {
                batch.Add(record);
            }

            try
            {
                await store.AddAsync(batch, CancellationToken.None);
            }
            catch (Exception ex)
            {
                InferenceLog.RecordsFailed(logger, batch.Count, ex);
            }

            batch.Clear();
        }
    }

    public override Task StopAsync(CancellationToken cancellationToken)
    {
        _queue.Writer.TryComplete();
        return base.StopAsync(cancellationToken);
    }
}
