using Coinop.Storage.Mint;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Coinop.Market.Mint.Lightning;

/// <summary>
/// Follows the node's stream of paid invoices and marks their mint quotes PAID, so a wallet learns of its payment
/// without the mint asking the node per quote. The stream resumes from the index stored after each event (LND
/// <c>settle_index</c>, Core Lightning <c>lastpay_index</c>), so a restart or a dropped stream misses nothing; while
/// it is down, a wallet asking about its quote still gets the node's answer (the polling fallback).
/// </summary>
internal sealed partial class InvoiceWatcher(
    ILightningBackend lightning,
    IMintQuoteStore quotes,
    ILightningCursorStore cursors,
    TimeProvider time,
    ILogger<InvoiceWatcher> logger) : BackgroundService
{
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(30);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (lightning.IsDemoMoney)
        {
            return; // the fake node pays its invoices at once and has no stream
        }

        var backoff = TimeSpan.FromMilliseconds(250);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var cursor = await cursors.GetAsync(lightning.Name, stoppingToken);
                LogWatching(logger, lightning.Name, cursor ?? "(start)");
                await foreach (var paid in lightning.WatchInvoicesAsync(cursor, stoppingToken))
                {
                    if (await quotes.MarkMintQuotePaidByHashAsync(paid.PaymentHash, time.GetUtcNow(), stoppingToken))
                    {
                        LogPaid(logger, paid.PaymentHash, paid.AmountPaidMsat);
                    }

                    await cursors.SaveAsync(lightning.Name, paid.Cursor, time.GetUtcNow(), stoppingToken);
                    backoff = TimeSpan.FromMilliseconds(250);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                LogStreamBroke(logger, lightning.Name, ex);
            }

            await Task.Delay(backoff, time, stoppingToken);
            backoff = backoff * 2 > MaxBackoff ? MaxBackoff : backoff * 2;
        }
    }
}
