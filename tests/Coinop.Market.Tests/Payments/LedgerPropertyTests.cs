using System.Security.Cryptography;
using Coinop.Market.Payments;
using Coinop.Storage;
using Coinop.Storage.Ledger;
using Coinop.Storage.Payments;
using CsCheck;
using Microsoft.Extensions.DependencyInjection;

namespace Coinop.Market.Tests.Payments;

/// <summary>
/// Conservation of money over random sequences of the cashier's and the request holds' operations against the real store: after every
/// operation the ledger equations hold, what was received and what is held match a simple model, and the journal
/// agrees with the account totals.
/// </summary>
public class LedgerPropertyTests
{
    private static readonly string[] Providers = ["p-alpha", "p-beta", "p-gamma"];

    private enum Kind
    {
        PayWithToken,
        OpenBalance,
        Reserve,
        Grow,
        Settle,
        Release,
        Refund,
        Payout,
    }

    private sealed record Op(Kind Kind, int A, int B, int C);

    [Theory]
    [MemberData(nameof(PaidMarket.Dialects), MemberType = typeof(PaidMarket))]
    public async Task Money_is_conserved_over_any_sequence_of_payments_settlements_refunds_and_payouts(SqlDialect dialect)
    {
        await using var market = await PaidMarket.StartAsync(dialect, o => o.FeePercent = 7.5);
        var cashier = market.Services.GetRequiredService<Cashier>();
        var requestHolds = market.Services.GetRequiredService<RequestHolds>();
        var payouts = market.Services.GetRequiredService<Payouts>();
        var ledger = market.Services.GetRequiredService<ILedgerStore>();
        var ops = Gen.Select(Gen.Enum<Kind>(), Gen.Int[0, 1000], Gen.Int[0, 1000], Gen.Int[0, 1000], (k, a, b, c) => new Op(k, a, b, c)).List[1, 20];

        await ops.SampleAsync(async sequence =>
        {
            var ct = TestContext.Current.CancellationToken;
            var start = await ledger.SummaryAsync(ct);
            long received = 0;
            var holds = new List<(Guid Id, long Msat, long Reserved, bool Token)>();
            var balances = new List<string>();
            foreach (var op in sequence)
            {
                switch (op.Kind)
                {
                    case Kind.PayWithToken:
                        var sats = 1 + (ulong)(op.A % 20);
                        var token = cashier.CheckToken(await market.TokenAsync(sats)).Token!;
                        var id = Guid.NewGuid();
                        var minimum = op.B * 30L;
                        var paid = await cashier.AcceptAsync(token, new CreditHold(id, minimum), ct);
                        received += (long)sats * 1000;
                        if (paid.Outcome == AcceptOutcome.Held)
                        {
                            holds.Add((id, (long)sats * 1000, Math.Min(minimum + op.C, (long)sats * 1000), true));
                        }
                        else
                        {
                            Assert.Equal(AcceptOutcome.CreditedToTokenBalance, paid.Outcome); // worth less than the minimum: kept under the token
                            balances.Add(PaymentKeys.TokenAccount(token.Key));
                        }

                        break;
                    case Kind.OpenBalance:
                        var account = PaymentKeys.ApiKeyAccount(PaymentKeys.NewApiKey());
                        var amount = 1 + (ulong)(op.A % 30);
                        var opened = await cashier.AcceptAsync(cashier.CheckToken(await market.TokenAsync(amount)).Token!, new CreditBalance(account), ct);
                        Assert.Equal(AcceptOutcome.Credited, opened.Outcome);
                        received += (long)amount * 1000;
                        balances.Add(account);
                        break;
                    case Kind.Reserve when balances.Count > 0:
                        var from = balances[op.B % balances.Count];
                        var want = op.C * 50L + 1;
                        var had = await cashier.BalanceAsync(from, ct) ?? 0;
                        var reserveId = Guid.NewGuid();
                        Assert.Equal(had >= want, await requestHolds.ReserveAsync(from, reserveId, want, ct));
                        if (had >= want)
                        {
                            holds.Add((reserveId, want, want, false));
                        }

                        break;
                    case Kind.Grow when holds.Count > 0:
                        // A retry re-reserving for a dearer provider: only a balance can add to its hold, and only what it has.
                        var growing = holds[op.B % holds.Count];
                        var extra = op.C * 40L + 1;
                        var payer = (await market.Services.GetRequiredService<IPaymentHoldStore>().FindAsync(growing.Id.ToString(), ct))!.ReleaseTo;
                        var before = await cashier.BalanceAsync(payer, ct) ?? 0;
                        var grown = await requestHolds.GrowHoldAsync(growing.Id, extra, ct);
                        Assert.Equal(!growing.Token && before >= extra, grown);
                        if (grown)
                        {
                            holds[holds.IndexOf(growing)] = growing with { Msat = growing.Msat + extra, Reserved = growing.Reserved + extra };
                        }

                        break;
                    case Kind.Settle when holds.Count > 0:
                        var settling = holds[op.B % holds.Count];
                        var settled = await requestHolds.SettleAsync(settling.Id, op.A * 37L, settling.Reserved, Providers[op.C % Providers.Length], ct);
                        Assert.NotNull(settled);
                        Assert.Equal(Math.Min(op.A * 37L, settling.Reserved), settled.ChargeMsat); // the cost, capped by the reservation
                        Assert.Equal((long)Math.Floor(settled.ChargeMsat * 0.925m), settled.ProviderMsat);
                        if (settling.Token)
                        {
                            // Whole sats of change; the sub-sat rest is spent, with the fee.
                            Assert.Equal(settling.Msat, settled.ProviderMsat + settled.FeeMsat + settled.ChangeSat * 1000);
                            Assert.InRange(settled.ProviderMsat + settled.FeeMsat - settled.ChargeMsat, 0, 999);
                            Assert.Equal(settled.ChangeSat > 0, settled.ChangeToken is not null);
                        }
                        else
                        {
                            Assert.Equal(settled.ChargeMsat, settled.ProviderMsat + settled.FeeMsat); // a balance keeps the rest to the msat
                            Assert.Null(settled.ChangeToken);
                        }

                        holds.Remove(settling);
                        Assert.Null(await requestHolds.SettleAsync(settling.Id, 1, 1, Providers[0], ct)); // once
                        break;
                    case Kind.Release when holds.Count > 0:
                        var releasing = holds[op.B % holds.Count];
                        await requestHolds.ReleaseAsync(releasing.Id, giveChange: op.A % 2 == 0, ct);
                        holds.Remove(releasing);
                        Assert.Null(await requestHolds.ReleaseAsync(releasing.Id, true, ct)); // once: no second change
                        break;
                    case Kind.Refund when balances.Count > 0:
                        var refunded = await payouts.RefundAsync(balances[op.B % balances.Count], ct);
                        Assert.NotNull(refunded);
                        Assert.InRange(refunded.RemainingMsat, 0, 999);
                        break;
                    case Kind.Payout:
                        var provider = Providers[op.B % Providers.Length];
                        var request = new ProviderRequestRecord(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16)), provider, "POST",
                            "/api/provider/payout", op.A % 2 == 0 ? null : 1 + op.C % 3, TimeProvider.System.GetUtcNow(), TimeProvider.System.GetUtcNow(), null);
                        var owed = (await payouts.EarningsAsync(provider, ct)).OwedMsat;
                        var payout = await payouts.PayoutAsync(request, ct);
                        Assert.Equal(owed / 1000 >= (request.AmountSat ?? 1), payout.Status == PayoutStatus.Paid);
                        break;
                }

                var s = await ledger.SummaryAsync(ct);
                LedgerAssert.Balanced(s);
                Assert.Equal(start.ReceivedMsat + received, s.ReceivedMsat);
                Assert.Equal(holds.Sum(h => h.Msat), s.HeldMsat - start.HeldMsat);
            }

            // Leave no hold open for the next sample's model.
            foreach (var hold in holds)
            {
                await requestHolds.ReleaseAsync(hold.Id, giveChange: false, ct);
            }

            Assert.Empty(await ledger.AuditAsync(ct));
        }, iter: 12, threads: 1, print: s => string.Join(", ", s));

        await market.AssertBalancedAsync();
    }
}
