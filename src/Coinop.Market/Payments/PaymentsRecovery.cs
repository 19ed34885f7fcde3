using Coinop.Market.Hosting;
using Coinop.Market.Inference;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Coinop.Market.Payments;

/// <summary>
/// Keeps money from getting stuck when requests die. At start, before the node serves anything, every hold this node
/// left (its requests died with the previous run) is released into the balance of the paying token or key; its
/// foreign redemptions left pending are resolved right after, in the background (that asks other mints, which may be
/// slow or away). Then, every sweep, the same for holds and redemptions that outlived any request (e.g. a settle that
/// failed on a store error): older than the request timeout plus a margin.
/// </summary>
internal sealed class PaymentsRecovery(
    Cashier cashier,
    RequestHolds holds,
    InProcessReservations reservations,
    MarketOptions market,
    IOptions<PaymentsOptions> options,
    TimeProvider time,
    ILogger<PaymentsRecovery> logger) : IHostedService, IDisposable
{
    private readonly CancellationTokenSource _stopping = new();
    private Task? _loop;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        // Nothing of this process is in flight yet: everything of this node is left over.
        var started = time.GetUtcNow();
        var (count, msat) = await holds.ReleaseAbandonedAsync(started, cancellationToken);
        if (count > 0)
        {
            PaymentsLog.HoldsReleased(logger, count, msat);
        }

        _loop = SweepAsync(started, _stopping.Token);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync();
        if (_loop is not null)
        {
            await _loop.WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    public void Dispose() => _stopping.Dispose();

    private async Task SweepAsync(DateTimeOffset started, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(options.Value.SweepInterval, time);
        try
        {
            await cashier.RecoverForeignAsync(started, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            PaymentsLog.RecoveryFailed(logger, ex);
        }

        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                var now = time.GetUtcNow();
                var margin = market.RequestTimeout + TimeSpan.FromMinutes(1);
                try
                {
                    await RecoverAsync(now - margin, now - options.Value.ForeignMintTimeout * 2, cancellationToken);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    PaymentsLog.RecoveryFailed(logger, ex);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task RecoverAsync(DateTimeOffset holdsBefore, DateTimeOffset redemptionsBefore, CancellationToken cancellationToken)
    {
        // Other mints' trouble never keeps this node's own holds from being released.
        try
        {
            await cashier.RecoverForeignAsync(redemptionsBefore, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            PaymentsLog.RecoveryFailed(logger, ex);
        }

        var (count, msat) = await holds.ReleaseAbandonedAsync(holdsBefore, cancellationToken);
        // A reservation kept in process belongs to a request of this process that may still be running (a consumer may ask
        // for a deadline of a day): only one older than any request can be is left over.
        var (reserved, reservedMsat) = reservations.Sweep(time.GetUtcNow() - ConsumerHeaders.LongestTimeout - TimeSpan.FromMinutes(1));
        (count, msat) = (count + reserved, msat + reservedMsat);
        if (count > 0)
        {
            PaymentsLog.HoldsReleased(logger, count, msat);
        }
    }
}
