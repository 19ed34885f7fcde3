using Coinop.Market.Cluster;
using Coinop.Market.Hosting;
using Coinop.Storage.Maintenance;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Coinop.Market.Abuse;

/// <summary>
/// Every <see cref="MarketOptions.StaleRowSweepInterval"/>, deletes rows strangers created for free and that can no
/// longer matter (see <see cref="StaleRowStore"/>): unpaid quotes and read-only provider nonces older than
/// <see cref="MarketOptions.StaleRowRetention"/>, and (open enrollment only) providers unseen for
/// <see cref="MarketOptions.IdleProviderRetention"/> that never earned. With several market nodes one of them sweeps (the
/// duty <see cref="Duty"/>), another once it dies.
/// </summary>
public sealed class StaleRowSweep(StaleRowStore store, NodeDuties duties, MarketOptions options, TimeProvider time, ILogger<StaleRowSweep> logger)
    : BackgroundService
{
    /// <summary>The duty of sweeping, held by one node at a time.</summary>
    public const string Duty = "stale_rows";

    /// <summary>One sweep (the timer's body; tests call it directly too).</summary>
    public async Task<PrunedRows> SweepOnceAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var pruned = await store.PruneAsync(now - options.StaleRowRetention,
            options.Enrollment == EnrollmentMode.Open ? now - options.IdleProviderRetention : null, cancellationToken);
        if (pruned.Total > 0)
        {
            StaleRowSweepLog.Pruned(logger, pruned.MintQuotes, pruned.ProviderNonces, pruned.Providers);
        }

        return pruned;
    }

    protected override Task ExecuteAsync(CancellationToken stoppingToken) => duties.RunAsync(Duty, (_, held) => SweepAsync(held), stoppingToken);

    private async Task SweepAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.StaleRowSweepInterval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try
                {
                    await SweepOnceAsync(stoppingToken);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    StaleRowSweepLog.Failed(logger, ex);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }
}
