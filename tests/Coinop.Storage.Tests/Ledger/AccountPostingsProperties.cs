using Coinop.Storage.Ledger;
using CsCheck;

namespace Coinop.Storage.Tests.Ledger;

/// <summary>
/// The per-account changes of a posting (<see cref="AccountPostings"/>), and the one statement that applies them, driven
/// with random transfers: against the rule itself, and against a real store (both dialects) compared with a model of the
/// books.
/// </summary>
public class AccountPostingsProperties
{
    private static readonly DateTimeOffset Now = DateTimeOffset.FromUnixTimeMilliseconds(1_800_000_000_000);

    /// <summary>
    /// The source is only ever debited and the clearing account is left out (either would trip a CHECK, not the rule);
    /// the holds account too, since the audit matches it with hold rows (a workload's account is of the same kind).
    /// </summary>
    private static readonly string[] Accounts =
    [
        LedgerAccounts.Received, LedgerAccounts.Balance("a"), LedgerAccounts.Balance("b"), LedgerAccounts.Provider("p"),
        LedgerAccounts.Workload("w"), LedgerAccounts.Fee, LedgerAccounts.Refunded,
    ];

    private static readonly Gen<LedgerTransfer> Transfers =
        Gen.Select(Gen.Int[0, Accounts.Length - 1], Gen.Int[1, Accounts.Length - 1], Gen.Frequency((1, Gen.Const(0L)), (6, Gen.Long[1, 5_000])),
                (from, offset, amount) => new LedgerTransfer(Accounts[from], Accounts[(from + offset) % Accounts.Length], amount))
            .Where(x => x.To != LedgerAccounts.Received);

    private static readonly Gen<LedgerTransfer[]> Postings = Transfers.Array[1, 5];

    [Fact]
    public void Each_account_gets_the_sum_of_its_transfers_once_in_name_order_and_is_opened_only_when_it_ends_no_lower()
    {
        Postings.Sample(transfers =>
        {
            var postings = AccountPostings.Of(transfers);
            var moved = transfers.Where(t => t.AmountMsat > 0).ToList();
            var names = postings.Select(p => p.Account).ToList();
            return names.SequenceEqual(moved.SelectMany(t => new[] { t.From, t.To }).Distinct().Order(StringComparer.Ordinal))
                && postings.Sum(p => p.CreditMsat) == moved.Sum(t => t.AmountMsat)
                && postings.Sum(p => p.DebitMsat) == moved.Sum(t => t.AmountMsat)
                && postings.All(p =>
                    p.CreditMsat == moved.Where(t => t.To == p.Account).Sum(t => t.AmountMsat)
                    && p.DebitMsat == moved.Where(t => t.From == p.Account).Sum(t => t.AmountMsat)
                    && p.Kind == LedgerAccounts.KindOf(p.Account)
                    && p.MayOpen == ((p.Account.StartsWith(LedgerAccounts.BalancePrefix, StringComparison.Ordinal)
                            || p.Account.StartsWith(LedgerAccounts.ProviderPrefix, StringComparison.Ordinal)
                            || p.Account.StartsWith(LedgerAccounts.WorkloadPrefix, StringComparison.Ordinal))
                        && p.CreditMsat > 0 && p.CreditMsat >= p.DebitMsat));
        });
    }

    [Theory]
    [MemberData(nameof(Stores.Dialects), MemberType = typeof(Stores))]
    public async Task A_posting_applies_whole_exactly_when_no_account_but_the_source_ends_below_zero(SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var store = await Stores.CreateAsync(dialect, ct);
        var ledger = new LedgerStore(store.Database);
        var failed = 0;
        await Postings.SampleAsync(async transfers =>
        {
            // The model: every account's balance now (a missing one, which only a balance, provider or workload can be, is 0).
            var before = new Dictionary<string, long?>(StringComparer.Ordinal);
            foreach (var account in Accounts)
            {
                before[account] = await ledger.BalanceAsync(account, ct);
            }

            var after = before.ToDictionary(x => x.Key, x => x.Value ?? 0, StringComparer.Ordinal);
            foreach (var t in transfers)
            {
                after[t.From] -= t.AmountMsat;
                after[t.To] += t.AmountMsat;
            }

            var fits = after.All(x => x.Key == LedgerAccounts.Received || x.Value >= 0);
            var posted = store.Database.WriteAsync((c, t) => ledger.PostAsync(c, t, "test", "r", transfers, Now, ct), ct);
            if (fits)
            {
                await posted;
            }
            else
            {
                await Assert.ThrowsAsync<InsufficientFundsException>(() => posted);
                failed++;
            }

            foreach (var account in Accounts)
            {
                var expected = fits && (before[account] is not null || transfers.Any(t => t.To == account && t.AmountMsat > 0)) ? after[account] : before[account];
                Assert.Equal(expected, await ledger.BalanceAsync(account, ct));
            }
        }, iter: 60, threads: 1);

        Assert.Empty(await ledger.AuditAsync(ct));
        Assert.True(failed > 0, "no sample tried to take an account below zero");
    }
}
