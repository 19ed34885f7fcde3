using Coinop.Ecash.MintApi;
using Coinop.Market.Mint.Lightning;
using Coinop.Storage.Mint;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Coinop.Market.Mint;

/// <summary>
/// Loads the mint seed and makes sure a keyset is active, then settles every melt a previous run left PENDING with
/// what the Lightning node says, all before the market serves a request: a wallet asking about those proofs after a
/// restart gets the node's answer, not a stale one. A node that does not answer within
/// <see cref="MintOptions.StartupReconcileTimeout"/> leaves its melts PENDING (never released) for the periodic pass.
/// </summary>
internal sealed class MintStartup(MintKeysets keysets, PendingMeltReconciler reconciler, IOptions<MintOptions> options) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await keysets.InitializeAsync((ulong)options.Value.InitialInputFeePpk, cancellationToken);
        using var budget = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        budget.CancelAfter(options.Value.StartupReconcileTimeout);
        try
        {
            // Every node settles what the backend answers for sure before it serves; sending a payment again is left to
            // the node holding melt recovery (two nodes must never both decide to send it).
            await reconciler.ReconcileAsync(budget.Token, mayResend: false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // The node is slow: what is left stays PENDING and the periodic pass goes on with it.
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

/// <summary>
/// Resolves melts left PENDING (by a node that stopped mid-payment, or a payment still in flight): each is settled
/// from what the Lightning backend says (<see cref="MeltResolution"/>): paid → inputs SPENT and change signed;
/// definitively failed → locks released; in flight or unknown → still pending, asked again on the next pass; never
/// sent and pending for longer than <see cref="MintOptions.PendingMeltRecoveryAfter"/> → sent now (only with
/// <c>mayResend</c>: by the node holding the duty <see cref="MeltRecoveryService.Duty"/>). A settlement is applied once: it
/// moves the quote out of PENDING first and writes nothing else when another pass did that already.
/// </summary>
internal sealed partial class PendingMeltReconciler(
    IMintQuoteStore quotes,
    MeltSettlement settlement,
    ILightningBackend lightning,
    IOptions<MintOptions> options,
    TimeProvider time,
    ILogger<PendingMeltReconciler> logger)
{
    public async Task ReconcileAsync(CancellationToken cancellationToken, bool mayResend = true)
    {
        var grace = options.Value.PendingMeltRecoveryAfter;
        IReadOnlyList<MeltQuoteRecord> pending;
        try
        {
            pending = await quotes.ListPendingMeltsAsync(time.GetUtcNow().AddTicks(1), cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogRecoveryFailed(logger, "(listing)", ex);
            return;
        }

        // One quote that cannot be settled must not keep the others pending.
        foreach (var quote in pending)
        {
            try
            {
                var payment = await lightning.CheckPaymentAsync(quote.PaymentHash, cancellationToken);
                if (MeltResolution.Decide(payment.State, mayPayAgain: mayResend && time.GetUtcNow() - quote.UpdatedAt >= grace) == MeltAction.PayAgain)
                {
                    // The backend never saw the payment (the node died before sending it): send it now; the
                    // backend refuses a second payment of one hash, so a call still on its way cannot pay twice.
                    LogPayingAgain(logger, quote.Id);
                    payment = await lightning.PayInvoiceAsync(Ecash.Lightning.Bolt11Invoice.Parse(quote.Request), quote.FeeReserve, cancellationToken);
                }

                var settled = await settlement.SettleMeltAsync(quote.Id, payment, cancellationToken);
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
}

/// <summary>
/// Runs <see cref="PendingMeltReconciler"/> on one node of the market at a time (the duty <see cref="Duty"/>): once when it
/// takes the duty, then every <see cref="MintOptions.MeltRecheckInterval"/>. Only this pass sends a payment again.
/// </summary>
internal sealed class MeltRecoveryService(PendingMeltReconciler reconciler, Cluster.NodeDuties duties, IOptions<MintOptions> options, TimeProvider time)
    : BackgroundService
{
    /// <summary>The duty of recovering melts left pending, held by one node at a time.</summary>
    public const string Duty = "melt_recovery";

    protected override Task ExecuteAsync(CancellationToken stoppingToken) => duties.RunAsync(Duty, (_, held) => RecoverAsync(held), stoppingToken);

    private async Task RecoverAsync(CancellationToken held)
    {
        using var timer = new PeriodicTimer(options.Value.MeltRecheckInterval, time);
        do
        {
            await reconciler.ReconcileAsync(held);
        }
        while (await timer.WaitForNextTickAsync(held));
    }
}
