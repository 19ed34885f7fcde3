using Coinop.Core.Pricing;
using Coinop.Core.Workloads;
using Coinop.Market.Payments;
using Coinop.Storage;
using Coinop.Storage.Ledger;
using Coinop.Market.Workloads;
using Coinop.Storage.Workloads;
using CsCheck;
using Microsoft.Extensions.DependencyInjection;

namespace Coinop.Market.Tests.Payments;

/// <summary>
/// Conservation of workload money over random sequences of submits, top-ups, settlements and closes against the real
/// store: after every step the ledger equations hold, each open workload's account holds what was paid minus what was
/// charged, each closed one is empty with a refund of the whole sats left, and repeating a settlement or a close moves
/// nothing.
/// </summary>
public class WorkloadLedgerPropertyTests
{
    private static readonly ProviderRate[] Rates = [new("p-alpha", 3.5m), new("p-beta", 1.25m), new("p-gamma", 0.4m)];

    private enum Kind
    {
        Submit,
        TopUp,
        Settle,
        Close,
    }

    private sealed record Op(Kind Kind, int A, int B, int C);

    private sealed class Model(string id, decimal quote)
    {
        public string Id { get; } = id;

        public WorkloadQuote Quote { get; } = new(quote);

        public long Paid { get; set; }

        public bool Closed { get; set; }
    }

    [Theory]
    [MemberData(nameof(PaidMarket.Dialects), MemberType = typeof(PaidMarket))]
    public async Task Workload_money_is_conserved_over_any_sequence_of_payments_settlements_and_refunds(SqlDialect dialect)
    {
        await using var market = await PaidMarket.StartAsync(dialect, o => o.FeePercent = 12.5);
        var cashier = market.Services.GetRequiredService<Cashier>();
        var holds = market.Services.GetRequiredService<RequestHolds>();
        var workloads = market.Services.GetRequiredService<WorkloadCashier>();
        var store = market.Services.GetRequiredService<IWorkloadStore>();
        var ledger = market.Services.GetRequiredService<ILedgerStore>();
        var ops = Gen.Select(Gen.Enum<Kind>(), Gen.Int[0, 1000], Gen.Int[0, 1000], Gen.Int[0, 1000], (k, a, b, c) => new Op(k, a, b, c)).List[1, 16];

        await ops.SampleAsync(async sequence =>
        {
            var ct = TestContext.Current.CancellationToken;
            var start = await ledger.SummaryAsync(ct);
            var models = new List<Model>();
            long received = 0;
            foreach (var op in sequence)
            {
                switch (op.Kind)
                {
                    case Kind.Submit:
                        var model = new Model(WorkloadIds.New(), Rates.Take(1 + op.C % 3).Sum(r => r.MsatPerSecond) * (1 + op.B % 4));
                        var spec = new WorkloadSpec("sleep", ["1"], 1, 64, TimeSpan.FromHours(1), null, RestartPolicy.Never, 0, false);
                        var submitted = WorkloadMachine.Submit(model.Id, spec, Rates[0].ProviderId, [], DateTimeOffset.FromUnixTimeMilliseconds(TimeProvider.System.GetUtcNow().ToUnixTimeMilliseconds())).Next;
                        var (paymentId, sats, payer) = await HoldAsync(market, cashier, 1 + op.A % 30);
                        Assert.True(await store.InsertAsync(submitted, new WorkloadTerms(null, null, model.Quote.MsatPerSecond, sats * 1000), new Dictionary<string, string>(),
                            Rates.ToDictionary(r => r.ProviderId, r => r.MsatPerSecond), ct,
                            (c, t, w, ct2) => workloads.CommitAsync(c, t, paymentId, sats * 1000, w, payer, ct2)));
                        holds.Forget(paymentId);
                        model.Paid = sats * 1000;
                        received += sats * 1000;
                        models.Add(model);
                        break;
                    case Kind.TopUp when models.Count > 0:
                        var topped = models[op.B % models.Count];
                        var stored = (await store.FindAsync(topped.Id, ct))!;
                        var (topUpId, more, _) = await HoldAsync(market, cashier, 1 + op.A % 10);
                        received += more * 1000;
                        var longer = stored.Workload with { PaidUntil = stored.Workload.PaidUntil.AddSeconds(60) };
                        if (topped.Closed)
                        {
                            // A finished workload takes no more money: the commit throws, the save rolls back, the payment is given back.
                            await Assert.ThrowsAsync<InvalidOperationException>(() => store.SaveAsync(stored, longer, stored.Terms, stored.Rates, ct,
                                (c, t, w, ct2) => workloads.CommitAsync(c, t, topUpId, more * 1000, w, null, ct2)));
                            Assert.NotNull(await holds.ReleaseAsync(topUpId, giveChange: true, ct));
                            break;
                        }

                        Assert.NotNull(await store.SaveAsync(stored, longer, stored.Terms, stored.Rates, ct,
                            (c, t, w, ct2) => workloads.CommitAsync(c, t, topUpId, more * 1000, w, null, ct2)));
                        holds.Forget(topUpId);
                        topped.Paid += more * 1000;
                        break;
                    case Kind.Settle when models.Count > 0:
                        var settling = models[op.B % models.Count];
                        var before = (await workloads.FindAsync(settling.Id, ct))!;
                        var serving = Rates.Where((_, i) => (op.C >> i) % 2 == 1).ToList();
                        var until = before.SettledUntil.AddMilliseconds(op.A * 97);
                        var settled = await workloads.SettleAsync(settling.Id, settling.Quote, serving, until, ct);
                        var after = (await workloads.FindAsync(settling.Id, ct))!;
                        if (settling.Closed)
                        {
                            Assert.Equal(before, after); // a closed account is never charged again
                            break;
                        }

                        Assert.Equal(until, settled);
                        var span = after.ChargedMsat - before.ChargedMsat;
                        Assert.InRange(span, 0, (long)decimal.Floor(settling.Quote.MsatPerSecond * op.A * 97 / 1000m));
                        Assert.InRange(span, 0, (long)decimal.Floor(serving.Sum(s => s.MsatPerSecond) * op.A * 97 / 1000m));
                        // The same span again: nothing more.
                        Assert.Equal(until, await workloads.SettleAsync(settling.Id, settling.Quote, serving, until, ct));
                        Assert.Equal(after, await workloads.FindAsync(settling.Id, ct));
                        break;
                    case Kind.Close when models.Count > 0:
                        var closing = models[op.B % models.Count];
                        var open = (await workloads.FindAsync(closing.Id, ct))!;
                        var refund = await workloads.CloseAsync(closing.Id, closing.Quote, Rates.Take(op.C % 4).ToList(), open.SettledUntil.AddMilliseconds(op.A * 13), ct);
                        var closed = (await workloads.FindAsync(closing.Id, ct))!;
                        Assert.False(closed.IsOpen);
                        Assert.Equal(new WorkloadRefund(closed.RefundMsat!.Value, closed.RefundToken), refund);
                        Assert.Equal((closing.Paid - closed.ChargedMsat) / 1000 * 1000, refund!.Msat);
                        Assert.Equal(refund.Msat > 0, refund.Token is not null);
                        if (refund.Token is { } token && !closing.Closed)
                        {
                            Assert.Equal((ulong)(refund.Msat / 1000), await market.RedeemAsync(token));
                        }

                        Assert.Equal(refund, await workloads.CloseAsync(closing.Id, closing.Quote, Rates, closed.SettledUntil.AddHours(1), ct)); // once
                        closing.Closed = true;
                        break;
                }

                var s = await ledger.SummaryAsync(ct);
                LedgerAssert.Balanced(s);
                Assert.Equal(start.ReceivedMsat + received, s.ReceivedMsat);
                long held = 0;
                foreach (var m in models)
                {
                    var account = (await workloads.FindAsync(m.Id, ct))!;
                    var inAccount = await ledger.BalanceAsync(LedgerAccounts.Workload(m.Id), ct) ?? 0;
                    Assert.Equal(m.Closed ? 0 : m.Paid - account.ChargedMsat, inAccount);
                    held += inAccount;
                }

                Assert.Equal(held, s.HeldMsat - start.HeldMsat);
            }

            Assert.Empty(await ledger.AuditAsync(ct));
        }, iter: 10, threads: 1, print: s => string.Join(", ", s));

        await market.AssertBalancedAsync();
    }

    /// <summary>A token of this market's mint taken into a hold for a workload payment (whole value), as the payment intake does.</summary>
    private static async Task<(Guid Id, long Sats, string Payer)> HoldAsync(PaidMarket market, Cashier cashier, long sats)
    {
        var token = cashier.CheckToken(await market.TokenAsync((ulong)sats)).Token!;
        var id = Guid.NewGuid();
        Assert.Equal(AcceptOutcome.Held, (await cashier.AcceptAsync(token, new CreditHold(id, 1), TestContext.Current.CancellationToken)).Outcome);
        return (id, sats, PaymentKeys.TokenAccount(token.Key));
    }
}
