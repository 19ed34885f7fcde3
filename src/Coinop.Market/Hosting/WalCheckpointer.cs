using Coinop.Storage;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Coinop.Market.Hosting;

/// <summary>
/// Checkpoints the SQLite store's WAL in the background, every <see cref="MarketOptions.WalCheckpointInterval"/> when
/// something was committed since the last complete one, on a connection of its own. Otherwise the commit that filled
/// the WAL to SQLite's threshold (1,000 pages, a few dozen paid requests) copied the pages into the database file and
/// waited for two fsyncs before its request could go on. The writers' own checkpoint stays, at
/// <see cref="StoreSetup.WalAutocheckpointPages"/>, as the bound on the WAL should this one fall behind. Not registered
/// on PostgreSQL.
/// </summary>
public sealed class WalCheckpointer(Database database, MarketOptions options, StorageMetrics metrics, TimeProvider time, ILogger<WalCheckpointer> logger)
    : BackgroundService
{
    /// <summary>The commit count the last complete checkpoint covered (-1: none yet).</summary>
    private long _covered = -1;

    /// <summary>One turn (the timer's body; tests call it directly too): null when nothing was committed since the last complete checkpoint.</summary>
    public async Task<WalCheckpoint?> CheckpointOnceAsync(CancellationToken cancellationToken)
    {
        var commits = database.Commits;
        if (commits == _covered)
        {
            return null;
        }

        var started = time.GetTimestamp();
        var checkpoint = await database.CheckpointAsync(cancellationToken);
        if (checkpoint is null)
        {
            return null;
        }

        var complete = !checkpoint.Busy && checkpoint.CheckpointedPages == checkpoint.WalPages;
        if (complete)
        {
            _covered = commits;
        }
        else
        {
            // A reader or the writer still used the WAL's newest pages: the next turn copies them.
            WalCheckpointerLog.Partial(logger, checkpoint.CheckpointedPages, checkpoint.WalPages);
        }

        metrics.Checkpointed(complete, checkpoint.CheckpointedPages, time.GetElapsedTime(started));
        return checkpoint;
    }

    protected override Task ExecuteAsync(CancellationToken stoppingToken) => RunAsync(stoppingToken);

    /// <summary>The timer loop until <paramref name="stoppingToken"/> (its timer exists when this returns to the caller).</summary>
    public async Task RunAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.WalCheckpointInterval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try
                {
                    await CheckpointOnceAsync(stoppingToken);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    WalCheckpointerLog.Failed(logger, ex);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }
}
