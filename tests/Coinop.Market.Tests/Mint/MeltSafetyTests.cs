using Coinop.Ecash.Crypto;
using Coinop.Ecash.MintApi;
using Coinop.Market.Mint;
using Coinop.Market.Mint.Lightning;
using Coinop.Market.Tests.TestLightning;
using Coinop.TestKit;
using CsCheck;
using Microsoft.Extensions.DependencyInjection;

namespace Coinop.Market.Tests.Mint;

public class MeltSafetyTests
{
    [Fact]
    public void The_rule_releases_only_on_a_definitive_failure_and_spends_only_on_a_definitive_success()
    {
        Gen.Select(Gen.Enum<PaymentState>(), Gen.Bool).Sample((observed, mayPayAgain) =>
        {
            var action = MeltResolution.Decide(observed, mayPayAgain);
            Assert.Equal(observed == PaymentState.Failed, action == MeltAction.Release);
            Assert.Equal(observed == PaymentState.Paid, action == MeltAction.Settle);
            Assert.True(action != MeltAction.PayAgain || (observed == PaymentState.Unknown && mayPayAgain));
        });
    }

    [Fact]
    public void Attempts_of_one_payment_combine_paid_over_in_flight_over_failed()
    {
        Gen.Enum<PaymentState>().List[0, 6].Sample(attempts =>
        {
            var combined = PaymentAttempts.Combine(attempts);
            var expected = attempts.Count == 0 ? PaymentState.Unknown
                : attempts.Contains(PaymentState.Paid) ? PaymentState.Paid
                : attempts.Any(a => a is PaymentState.Pending or PaymentState.Unknown) ? PaymentState.Pending
                : PaymentState.Failed;
            Assert.Equal(expected, combined);

            // A failed attempt never outweighs a success or one still in flight.
            Assert.True(combined != PaymentState.Failed || attempts.All(a => a == PaymentState.Failed));
        });
    }

    /// <summary>Issue 9 item 11: recovery used to treat "unknown" as failed and release proofs whose payment then succeeded.</summary>
    [Fact]
    public async Task A_payment_the_backend_calls_unknown_then_paid_keeps_its_proofs_pending_then_spends_them()
    {
        var ct = TestContext.Current.CancellationToken;
        var backend = new ScriptedLightning(new FakeLightningBackend(TimeProvider.System));
        await using var market = await TestMarket.StartAsync(services: s =>
        {
            s.AddSingleton<ILightningBackend>(backend);
            s.Configure<MintOptions>(o => o.PendingMeltRecoveryAfter = TimeSpan.FromSeconds(1));
        });
        var proofs = await market.MintProofsAsync(32);
        var invoice = market.Lightning.Invoice(20_000);
        var quote = await market.Mint.CreateMeltQuoteAsync(invoice, ct);
        var ys = proofs.Select(p => Convert.ToHexStringLower(Bdhke.Y(p.Secret))).ToList();

        // The payment call dies without an answer, and the node then has no record of it (for a while).
        backend.PayAnswers.Enqueue(() => throw new IOException("connection reset during the payment"));
        backend.CheckAnswers.Enqueue(new PaymentResult(PaymentState.Unknown));
        backend.CheckAnswers.Enqueue(new PaymentResult(PaymentState.Unknown));
        Assert.Equal(MeltQuoteState.Pending, (await market.Mint.MeltAsync(new MeltRequest { Quote = quote.Quote, Inputs = proofs }, ct)).State);

        // Recovery asks twice and hears "unknown" (and sending again only finds the payment in flight).
        backend.PayAnswers.Enqueue(() => new PaymentResult(PaymentState.Pending));
        backend.PayAnswers.Enqueue(() => new PaymentResult(PaymentState.Pending));
        await Eventually.WaitAsync(async () => (backend.ChecksAnswered, (await market.Mint.GetMeltQuoteAsync(quote.Quote, ct)).State),
            s => s.ChecksAnswered >= 2 || s.State != MeltQuoteState.Pending, "recovery to ask the backend twice", cancellationToken: ct);
        Assert.Equal(MeltQuoteState.Pending, (await market.Mint.GetMeltQuoteAsync(quote.Quote, ct)).State);
        Assert.All((await market.Mint.CheckStateAsync(ys, ct)).States, s => Assert.Equal(ProofState.Pending, s.State));

        // Then the node answers: paid.
        var preimage = Convert.ToHexStringLower(new byte[32]);
        backend.CheckAnswers.Enqueue(new PaymentResult(PaymentState.Paid, 0, preimage));
        var paid = await Eventually.WaitAsync(() => market.Mint.GetMeltQuoteAsync(quote.Quote, ct)!, q => q!.State != MeltQuoteState.Pending,
            "the melt to settle", cancellationToken: ct);
        Assert.Equal(MeltQuoteState.Paid, paid.State);
        Assert.Equal(preimage, paid.PaymentPreimage);
        Assert.All((await market.Mint.CheckStateAsync(ys, ct)).States, s => Assert.Equal(ProofState.Spent, s.State));
    }

    /// <summary>A Lightning backend whose payment answers are scripted; everything else is the fake backend's.</summary>
    private sealed class ScriptedLightning(FakeLightningBackend inner) : PaymentsOverFake(inner)
    {
        private int _checksAnswered;

        public System.Collections.Concurrent.ConcurrentQueue<Func<PaymentResult>> PayAnswers { get; } = new();

        public System.Collections.Concurrent.ConcurrentQueue<PaymentResult> CheckAnswers { get; } = new();

        public int ChecksAnswered => Volatile.Read(ref _checksAnswered);

        public override string Name => "scripted";

        public override Task<PaymentResult> PayInvoiceAsync(Coinop.Ecash.Lightning.Bolt11Invoice invoice, ulong maxFeeSat, CancellationToken cancellationToken) =>
            Task.FromResult(PayAnswers.TryDequeue(out var answer) ? answer() : new PaymentResult(PaymentState.Pending));

        public override Task<PaymentResult> CheckPaymentAsync(string paymentHash, CancellationToken cancellationToken)
        {
            // With nothing scripted the node still has no news: in flight.
            var answer = CheckAnswers.TryDequeue(out var a) ? a : new PaymentResult(PaymentState.Pending);
            if (answer.State == PaymentState.Unknown)
            {
                Interlocked.Increment(ref _checksAnswered);
            }

            return Task.FromResult(answer);
        }
    }
}
