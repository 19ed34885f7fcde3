using Coinop.Ecash.MintApi;
using Coinop.Market.Mint.Lightning;
using Coinop.Storage.Mint;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Coinop.Market.Mint;

/// <summary>Loads the mint seed and makes sure a keyset is active before the market serves requests.</summary>
internal sealed class MintStartup(MintKeysets keysets, IOptions<MintOptions> options) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) =>
        keysets.InitializeAsync((ulong)options.Value.InitialInputFeePpk, cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

/// <summary>
/// Resolves melts left PENDING by a node that stopped mid-payment: on start and then periodically, each melt
/// pending for longer than <see cref="MintOptions.PendingMeltRecoveryAfterSeconds"/> is settled from what the
/// Lightning backend says (<see cref="MeltResolution"/>): paid → inputs SPENT and change signed; definitively failed →
/// locks released; in flight or unknown → still pending, asked again on the next tick; never sent → sent now.
/// </summary>
internal sealed partial class MeltRecoveryService(
    IMintQuoteStore quotes,
    CashuMint mint,
    ILightningBackend lightning,
    IOptions<MintOptions> options,
    TimeProvider time,
    ILogger<MeltRecoveryService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var grace = TimeSpan.FromSeconds(options.Value.PendingMeltRecoveryAfterSeconds);
        using var timer = new PeriodicTimer(options.Value.MeltRecheckInterval, time);
        do
        {
            // Every pending melt, from the first tick at start: after a restart no request of this process is paying
            // any of them, and the node's answer is what their proofs become.
            IReadOnlyList<MeltQuoteRecord> pending;
            try
            {
                pending = await quotes.ListPendingMeltsAsync(time.GetUtcNow().AddTicks(1), stoppingToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogRecoveryFailed(logger, "(listing)", ex);
                pending = [];
            }

            // One quote that cannot be settled must not keep the others pending.
            foreach (var quote in pending)
            {
                try
                {
                    var payment = await lightning.CheckPaymentAsync(quote.PaymentHash, stoppingToken);
                    if (MeltResolution.Decide(payment.State, mayPayAgain: time.GetUtcNow() - quote.UpdatedAt >= grace) == MeltAction.PayAgain)
                    {
                        // The backend never saw the payment (the node died before sending it): send it now; the
                        // backend refuses a second payment of one hash, so a call still on its way cannot pay twice.
                        LogPayingAgain(logger, quote.Id);
                        payment = await lightning.PayInvoiceAsync(Ecash.Lightning.Bolt11Invoice.Parse(quote.Request), quote.FeeReserve, stoppingToken);
                    }

                    var settled = await mint.SettleMeltAsync(quote.Id, payment, stoppingToken);
                    if (settled.State != MeltQuoteState.Pending)
                    {
                        LogRecovered(logger, quote.Id, payment.State, settled.State);
                    }
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    LogRecoveryFailed(logger, quote.Id, ex);
                }
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Recovered pending melt {QuoteId}: payment {Payment}, quote now {State}")]
    private static partial void LogRecovered(ILogger logger, string quoteId, PaymentState payment, string state);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Pending melt {QuoteId}: the Lightning backend has no record of its payment; sending it again")]
    private static partial void LogPayingAgain(ILogger logger, string quoteId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Recovering pending melt {QuoteId} failed; retrying on the next tick")]
    private static partial void LogRecoveryFailed(ILogger logger, string quoteId, Exception exception);
}
