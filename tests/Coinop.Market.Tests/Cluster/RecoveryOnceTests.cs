using Coinop.Ecash.Crypto;
using Coinop.Ecash.MintApi;
using Coinop.Ecash.Wallet;
using Coinop.Market.Mint;
using Coinop.Market.Mint.Lightning;
using Coinop.Market.Tests.TestLightning;
using Coinop.Storage;
using Microsoft.Extensions.DependencyInjection;

namespace Coinop.Market.Tests.Cluster;

/// <summary>
/// Recovery that two nodes may run at once (a node settling its own melt while the melt-recovery duty holder looks at it,
/// or a holder paused past its lease) applies one outcome, on PostgreSQL where the passes really run side by side.
/// </summary>
public class RecoveryOnceTests
{
    [Fact]
    public async Task Passes_that_settle_one_pending_melt_at_once_with_different_answers_apply_exactly_one_of_them()
    {
        var ct = TestContext.Current.CancellationToken;
        var backend = new UnansweredLightning(new FakeLightningBackend(TimeProvider.System));
        await using var market = await TestMarket.StartAsync(SqlDialect.Postgres, services: s =>
        {
            s.AddSingleton<ILightningBackend>(backend);
            s.Configure<MintOptions>(o =>
            {
                o.MeltRecheckInterval = TimeSpan.FromHours(1); // only the passes below
                o.PendingMeltRecoveryAfter = TimeSpan.FromHours(1);
            });
        });
        var preimage = Convert.ToHexStringLower(new byte[32]);
        for (var round = 0; round < 6; round++)
        {
            var proofs = await market.MintProofsAsync(32);
            var ys = proofs.Select(p => Convert.ToHexStringLower(Bdhke.Y(p.Secret))).ToList();
            var quote = await market.Mint.CreateMeltQuoteAsync(market.Lightning.Invoice(20_000), ct);
            var keyset = await market.Mint.GetActiveKeysetAsync(ct);
            var change = BlindedOutputs.Create(keyset.Id, Enumerable.Repeat(1UL, 10)).Select(o => o.Message).ToList(); // NUT-08 blank outputs
            Assert.Equal(MeltQuoteState.Pending,
                (await market.Mint.MeltAsync(new MeltRequest { Quote = quote.Quote, Inputs = proofs, Outputs = change }, ct)).State);

            // One pass hears "paid", the other "failed" (a backend that changed its mind between two questions): whichever
            // moves the quote out of PENDING first decides, and the other writes nothing.
            using var start = new Barrier(2);
            var paid = Task.Run(() => { start.SignalAndWait(ct); return market.App.Services.GetRequiredService<MeltSettlement>().SettleMeltAsync(quote.Quote, new PaymentResult(PaymentState.Paid, 0, preimage), ct); }, ct);
            var failed = Task.Run(() => { start.SignalAndWait(ct); return market.App.Services.GetRequiredService<MeltSettlement>().SettleMeltAsync(quote.Quote, new PaymentResult(PaymentState.Failed, Error: "no route"), ct); }, ct);
            await Task.WhenAll(paid, failed);

            var final = await market.Mint.GetMeltQuoteAsync(quote.Quote, ct);
            var states = (await market.Mint.CheckStateAsync(ys, ct)).States.Select(s => s.State).Distinct().ToList();
            if (final.State == MeltQuoteState.Paid)
            {
                Assert.Equal([ProofState.Spent], states);
            }
            else
            {
                // Released: the inputs are the payer's again, and no change was signed (restoring it would mint money).
                Assert.Equal(MeltQuoteState.Unpaid, final.State);
                Assert.Equal([ProofState.Unspent], states);
                Assert.Empty((await market.Mint.RestoreAsync(change, ct)).Signatures);
            }
        }
    }

    /// <summary>The fake backend, except that a payment never gets an answer (the call dies) and checks hear "in flight".</summary>
    private sealed class UnansweredLightning(FakeLightningBackend inner) : PaymentsOverFake(inner)
    {
        public override string Name => "unanswered";

        public override Task<PaymentResult> PayInvoiceAsync(Coinop.Ecash.Lightning.Bolt11Invoice invoice, ulong maxFeeSat, CancellationToken cancellationToken) =>
            throw new IOException("connection reset during the payment");

        public override Task<PaymentResult> CheckPaymentAsync(string paymentHash, CancellationToken cancellationToken) =>
            Task.FromResult(new PaymentResult(PaymentState.Pending));
    }
}
