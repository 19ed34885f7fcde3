using Coinop.Storage.Ledger;
using CsCheck;

namespace Coinop.Storage.Tests.Ledger;

/// <summary>
/// Balance reservations kept in process (<see cref="BalanceReservations"/>) driven with random sequences of reserve,
/// grow, settle, release, withdraw, top-up and sweep: first against a model of the posted balances, then against a
/// real SQLite store whose postings must leave every account what is reserved of it (interleaved concurrently there).
/// </summary>
public class BalanceReservationsProperties
{
    private static readonly DateTimeOffset Start = DateTimeOffset.FromUnixTimeMilliseconds(1_800_000_000_000);

    private static readonly string[] Accounts = [LedgerAccounts.Balance("a"), LedgerAccounts.Balance("b")];

    /// <summary>One step: what, on which account (or request), how much, at which minute.</summary>
    private sealed record Step(int Kind, int Account, int Request, long Amount, int Minute)
    {
        public override string ToString() => $"{Names[Kind]}(account {Account}, request {Request}, {Amount} msat, minute {Minute})";
    }

    private static readonly string[] Names = ["reserve", "grow", "settle", "release", "withdraw", "top-up", "sweep"];

    private static readonly Gen<Step> Steps = Gen.Select(Gen.Int[0, Names.Length - 1], Gen.Int[0, Accounts.Length - 1], Gen.Int[0, 7], Gen.Long[1, 3_000],
        Gen.Int[0, 10], (kind, account, request, amount, minute) => new Step(kind, account, request, amount, minute));

    private static readonly Gen<Step[]> Runs = Steps.Array[1, 60];

    [Fact]
    public void Nothing_posted_goes_below_zero_reservations_stay_within_the_balance_and_a_granted_reservation_always_settles()
    {
        Gen.Select(Runs, Gen.Long[0, 3_000]).Sample((steps, funded) =>
        {
            var reservations = new BalanceReservations();
            var posted = Accounts.ToDictionary(a => a, _ => funded);
            var granted = new Dictionary<string, long>();
            var now = Start;
            foreach (var step in steps)
            {
                var account = Accounts[step.Account];
                var request = "r" + step.Request;
                now = Start + TimeSpan.FromMinutes(step.Minute);
                switch (step.Kind)
                {
                    case 0:
                        var room = posted[account] - reservations.ReservedMsat(account);
                        var had = reservations.Find(request) is not null;
                        var ok = reservations.TryReserve(request, account, step.Amount, posted[account], now);
                        if (ok != (!had && room >= step.Amount))
                        {
                            return false;
                        }

                        if (ok)
                        {
                            granted[request] = step.Amount;
                        }

                        break;
                    case 1:
                        if (reservations.Find(request) is { } held && reservations.TryGrow(request, held.Account, step.Amount, posted[held.Account]))
                        {
                            granted[request] += step.Amount;
                        }

                        break;
                    case 2:
                        // The settle takes its reservation out, then debits any cost up to it: allowed, always.
                        if (reservations.Take(request) is { } taken)
                        {
                            var cost = Math.Min(step.Amount, taken.AmountMsat);
                            if (taken.AmountMsat != granted[request] || posted[taken.Account] - cost < reservations.ReservedMsat(taken.Account))
                            {
                                return false;
                            }

                            posted[taken.Account] -= cost;
                        }

                        granted.Remove(request);
                        break;
                    case 3:
                        reservations.Take(request);
                        granted.Remove(request);
                        break;
                    case 4:
                        // A withdrawal (or any other debit) takes the balance only down to what is reserved of it.
                        if (posted[account] - step.Amount >= reservations.ReservedMsat(account))
                        {
                            posted[account] -= step.Amount;
                        }

                        break;
                    case 5:
                        posted[account] += step.Amount;
                        break;
                    default:
                        foreach (var swept in reservations.Sweep(now - TimeSpan.FromMinutes(5)))
                        {
                            if (swept.Since >= now - TimeSpan.FromMinutes(5))
                            {
                                return false;
                            }

                            granted.Remove(swept.RequestId);
                        }

                        break;
                }

                if (Accounts.Any(a => posted[a] < 0 || reservations.ReservedMsat(a) > posted[a])
                    || Accounts.Any(a => reservations.ReservedMsat(a) != granted.Where(g => reservations.Find(g.Key)?.Account == a).Sum(g => g.Value))
                    || reservations.Count != granted.Count)
                {
                    return false;
                }
            }

            return true;
        }, iter: 2_000);
    }

    /// <summary>
    /// A grow is judged against the balance of the account that was read: a request released and reserved again on
    /// another account meanwhile (same request id) is not grown against the first account's balance (a CI seed did this
    /// through the real-store property's own grow, which then found the second account short at settlement).
    /// </summary>
    [Fact]
    public void A_grow_given_another_accounts_balance_changes_nothing()
    {
        var reservations = new BalanceReservations();
        Assert.True(reservations.TryReserve("r", Accounts[1], 100, 100, Start));

        Assert.False(reservations.TryGrow("r", Accounts[0], 500, 10_000));
        Assert.Equal(100, reservations.ReservedMsat(Accounts[1]));
        Assert.True(reservations.TryGrow("r", Accounts[1], 1, 101));
        Assert.Equal(101, reservations.ReservedMsat(Accounts[1]));
    }

    [Fact]
    public async Task On_a_real_store_concurrent_debits_never_take_reserved_money_and_every_granted_reservation_settles()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var store = await Stores.CreateAsync(SqlDialect.Sqlite, ct);
        var reservations = new BalanceReservations();
        var ledger = new LedgerStore(store.Database, reservations);
        var run = 0;
        await Gen.Select(Runs, Gen.Long[0, 6_000]).SampleAsync(async (steps, funded) =>
        {
            run++;
            var accounts = Accounts.Select(a => a + "-" + run).ToArray();
            foreach (var account in accounts)
            {
                await store.Database.WriteAsync((c, t) => ledger.PostAsync(c, t, "payment", "fund", [new(LedgerAccounts.Received, account, funded + 1)], Start, ct), ct);
            }

            var failures = 0;
            // Every step at once: their store work interleaves in the writer's turns as a market's requests do.
            await Task.WhenAll(steps.Select(async (step, i) =>
            {
                await Task.Yield();
                var account = accounts[step.Account];
                var request = $"{run}-{step.Request}";
                switch (step.Kind)
                {
                    case 0:
                        await store.Database.UnderWriterAsync(async c =>
                            await ledger.PostedBalanceAsync(c, null, account, ct) is { } posted
                            && reservations.TryReserve(request, account, step.Amount, posted, Start), ct);
                        break;
                    case 1:
                        // As the market grows a hold: the reservation found in the writer's turn, its account's balance read in it.
                        await store.Database.UnderWriterAsync(async c =>
                            reservations.Find(request) is { } held
                            && reservations.TryGrow(request, held.Account, step.Amount, (await ledger.PostedBalanceAsync(c, null, held.Account, ct))!.Value), ct);
                        break;
                    case 2:
                        {
                            BalanceReservation? taken = null;
                            try
                            {
                                await store.Database.WriteAsync(async (c, t) =>
                                {
                                    taken ??= reservations.Take(request);
                                    if (taken is not null)
                                    {
                                        await ledger.PostAsync(c, t, "settle", request, [new(taken.Account, LedgerAccounts.Fee, Math.Min(step.Amount, taken.AmountMsat))],
                                            Start, ct);
                                    }
                                }, ct);
                            }
                            catch (InsufficientFundsException)
                            {
                                Interlocked.Increment(ref failures); // a granted reservation that did not settle: the property fails
                            }

                            break;
                        }

                    case 3:
                        reservations.Take(request);
                        break;
                    case 4:
                        try
                        {
                            await store.Database.WriteAsync((c, t) => ledger.PostAsync(c, t, "refund", account, [new(account, LedgerAccounts.Refunded, step.Amount)], Start, ct),
                                ct);
                        }
                        catch (InsufficientFundsException)
                        {
                            // Refused: it would have taken reserved money (or more than the balance).
                        }

                        break;
                    case 5:
                        await store.Database.WriteAsync((c, t) => ledger.PostAsync(c, t, "payment", "top-up", [new(LedgerAccounts.Received, account, step.Amount)], Start, ct), ct);
                        break;
                    default:
                        await store.Database.UnderWriterAsync(async c =>
                        {
                            foreach (var a in accounts)
                            {
                                // Checked in the writer's turn, where no posting runs.
                                if ((await ledger.PostedBalanceAsync(c, null, a, ct))!.Value < reservations.ReservedMsat(a))
                                {
                                    Interlocked.Increment(ref failures);
                                }
                            }

                            return true;
                        }, ct);
                        break;
                }
            }));

            foreach (var account in accounts)
            {
                var posted = await store.Database.UnderWriterAsync(c => ledger.PostedBalanceAsync(c, null, account, ct), ct);
                if (posted < reservations.ReservedMsat(account) || posted < 0)
                {
                    failures++;
                }
            }

            // What is still reserved settles in full.
            foreach (var request in Enumerable.Range(0, 8).Select(r => $"{run}-{r}"))
            {
                if (reservations.Find(request) is { } left)
                {
                    try
                    {
                        await store.Database.WriteAsync(async (c, t) =>
                        {
                            var taken = reservations.Take(request)!;
                            await ledger.PostAsync(c, t, "settle", request, [new(taken.Account, LedgerAccounts.Fee, taken.AmountMsat)], Start, ct);
                        }, ct);
                    }
                    catch (InsufficientFundsException)
                    {
                        failures++;
                    }
                }
            }

            return failures == 0;
        }, iter: 40, threads: 1);
        Assert.Empty(await ledger.AuditAsync(ct));
    }
}
