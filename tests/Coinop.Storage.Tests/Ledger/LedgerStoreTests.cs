using Coinop.Storage.Ledger;
using Coinop.Storage.Payments;
using Dapper;

namespace Coinop.Storage.Tests.Ledger;

public class LedgerStoreTests
{
    private static readonly DateTimeOffset Now = DateTimeOffset.FromUnixTimeMilliseconds(1_800_000_000_000);

    [Theory]
    [MemberData(nameof(Stores.Dialects), MemberType = typeof(Stores))]
    public async Task Transfers_move_money_between_accounts_and_no_account_but_the_source_goes_below_zero(SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var store = await Stores.CreateAsync(dialect, ct);
        var ledger = new LedgerStore(store.Database);
        var alice = LedgerAccounts.Balance("alice");

        await store.Database.WriteAsync((c, t) => ledger.PostAsync(c, t, "payment", "t1", [new(LedgerAccounts.Received, alice, 5_000)], Now, ct), ct);
        await Assert.ThrowsAsync<InsufficientFundsException>(() => store.Database.WriteAsync((c, t) =>
            ledger.PostAsync(c, t, "reserve", "r1", [new(alice, LedgerAccounts.Holds, 5_001)], Now, ct), ct));
        await store.Database.WriteAsync((c, t) => ledger.PostAsync(c, t, "reserve", "r2", [new(alice, LedgerAccounts.Holds, 5_000)], Now, ct), ct);
        await store.Database.WriteAsync((c, t) => ledger.PostAsync(c, t, "settle", "r2",
        [
            new(LedgerAccounts.Holds, LedgerAccounts.Spent, 3_000),
            new(LedgerAccounts.Spent, LedgerAccounts.Provider("p1"), 2_700),
            new(LedgerAccounts.Spent, LedgerAccounts.Fee, 300),
            new(LedgerAccounts.Holds, alice, 2_000),
        ], Now, ct), ct);

        Assert.Equal(2_000, await ledger.BalanceAsync(alice, ct));
        Assert.Null(await ledger.BalanceAsync(LedgerAccounts.Balance("nobody"), ct));
        Assert.Equal(new LedgerSummary(5_000, 3_000, 0, 2_000, 0, 2_700, 2_700, 300, 0), await ledger.SummaryAsync(ct));
        Assert.Equal(new ProviderEarnings("p1", 2_700, 0), await ledger.EarningsAsync("p1", ct));
        Assert.Empty(await ledger.AuditAsync(ct));
    }

    [Theory]
    [MemberData(nameof(Stores.Dialects), MemberType = typeof(Stores))]
    public async Task The_schema_keeps_the_journal_append_only_and_the_clearing_account_at_zero(SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var store = await Stores.CreateAsync(dialect, ct);
        var ledger = new LedgerStore(store.Database);
        var bob = LedgerAccounts.Balance("bob");
        await store.Database.WriteAsync((c, t) => ledger.PostAsync(c, t, "payment", "t1", [new(LedgerAccounts.Received, bob, 1_000)], Now, ct), ct);

        await Assert.ThrowsAnyAsync<Exception>(() => store.Database.WriteAsync((c, t) => c.ExecuteAsync("UPDATE ledger_entries SET amount_msat = 1", transaction: t), ct));
        await Assert.ThrowsAnyAsync<Exception>(() => store.Database.WriteAsync((c, t) => c.ExecuteAsync("DELETE FROM ledger_entries", transaction: t), ct));
        // Money into 'spent' that does not leave it in the same transaction breaks spent = earned + fee: refused.
        await Assert.ThrowsAnyAsync<Exception>(() => store.Database.WriteAsync((c, t) =>
            ledger.PostAsync(c, t, "settle", "x", [new(bob, LedgerAccounts.Spent, 1_000)], Now, ct), ct));
        Assert.Empty(await ledger.AuditAsync(ct));
        Assert.Equal(1_000, (await ledger.SummaryAsync(ct)).BalancesMsat);
    }

    /// <summary>
    /// A refund reads a balance and debits what it read. On PostgreSQL a reservation on another connection could take
    /// part of the balance in between (seen: a refund racing a burst of requests answered 500 once its retries ran
    /// out); the read made to debit keeps the account's row locked until its transaction ends. A plain read does not.
    /// </summary>
    [Fact]
    public async Task A_balance_read_to_debit_keeps_the_account_from_other_writers_until_its_transaction_ends_on_PostgreSQL()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var store = await Stores.CreateAsync(SqlDialect.Postgres, ct);
        var ledger = new LedgerStore(store.Database);
        var carol = LedgerAccounts.Balance("carol");
        await store.Database.WriteAsync((c, t) => ledger.PostAsync(c, t, "payment", "t1", [new(LedgerAccounts.Received, carol, 3_000)], Now, ct), ct);

        Assert.True(await LockedWhileReadAsync(read: (c, t) => ledger.BalanceToDebitAsync(c, t, carol, ct)));
        Assert.False(await LockedWhileReadAsync(read: (c, t) => ledger.BalanceAsync(c, t, carol, ct)));

        // Whether another writer finds the account's row locked (NOWAIT: an answer at once, no waiting) while the
        // transaction that read it is still open.
        async Task<bool> LockedWhileReadAsync(Func<System.Data.Common.DbConnection, System.Data.Common.DbTransaction, Task<long?>> read)
        {
            var probed = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            var reader = store.Database.WriteAsync(async (c, t) =>
            {
                Assert.Equal(3_000, await read(c, t));
                probed.SetResult(await ProbeAsync());
            }, ct);
            await reader;
            return await probed.Task;
        }

        async Task<bool> ProbeAsync()
        {
            await using var other = await store.Database.OpenAsync(ct);
            try
            {
                await other.ExecuteAsync("SELECT 1 FROM ledger_accounts WHERE account = @carol FOR UPDATE NOWAIT", new { carol });
                return false;
            }
            catch (Npgsql.PostgresException ex) when (ex.SqlState == Npgsql.PostgresErrorCodes.LockNotAvailable)
            {
                return true;
            }
        }
    }

    [Theory]
    [MemberData(nameof(Stores.Dialects), MemberType = typeof(Stores))]
    public async Task A_hold_closes_once_even_when_closings_race(SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var store = await Stores.CreateAsync(dialect, ct);
        var holds = new PaymentHoldStore(store.Database);
        await store.Database.WriteAsync((c, t) => holds.InsertAsync(c, t, new PaymentHold("r1", "n1", HoldPayer.Token, "balance:t1", 4_000, HoldState.Held, Now), ct), ct);

        var closed = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => store.Database.WriteAsync((c, t) =>
            holds.TryCloseAsync(c, t, "r1", new HoldOutcome(i % 2 == 0 ? HoldState.Settled : HoldState.Released), Now, ct), ct)));

        var winner = Assert.Single(closed, h => h is not null);
        Assert.Equal(new PaymentHold("r1", "n1", HoldPayer.Token, "balance:t1", 4_000, HoldState.Held, Now), winner);
        Assert.Empty(await holds.HeldAsync("n1", null, ct));
        Assert.NotEqual(HoldState.Held, (await holds.FindAsync("r1", ct))!.State);
    }

    [Theory]
    [MemberData(nameof(Stores.Dialects), MemberType = typeof(Stores))]
    public async Task A_provider_request_nonce_is_used_once_and_a_foreign_redemption_credits_once(SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var store = await Stores.CreateAsync(dialect, ct);
        var requests = new ProviderRequestStore(store.Database);
        var request = new ProviderRequestRecord("00112233445566778899aabbccddeeff", "p1", "POST", "/api/provider/payout", 5, Now, Now, null);
        Assert.True(await store.Database.WriteAsync((c, t) => requests.TryRecordAsync(c, t, request, ct), ct));
        Assert.False(await store.Database.WriteAsync((c, t) => requests.TryRecordAsync(c, t, request with { AmountSat = 6 }, ct), ct));
        await store.Database.WriteAsync((c, t) => requests.SetResultAsync(c, t, request.Nonce, "cashuBxyz", ct), ct);
        Assert.Equal(request with { Result = "cashuBxyz" }, await requests.FindAsync(request.Nonce, ct));

        var foreign = new ForeignPaymentStore(store.Database);
        var payment = new ForeignPaymentRecord("tk", "http://mint", "cashuB...", 8, "[]", "n1", ForeignPaymentState.Pending, Now, Now);
        Assert.True(await foreign.TryStartAsync(payment, ct));
        Assert.False(await foreign.TryStartAsync(payment, ct)); // pending: not twice
        Assert.True(await foreign.TryFailAsync("tk", Now, ct));
        Assert.True(await foreign.TryStartAsync(payment with { Outputs = "[1]" }, ct)); // a failed one may be tried again
        Assert.Single(await foreign.PendingAsync("n1", Now.AddSeconds(1), ct));
        ForeignProofRecord[] proofs = [new("s1", "http://mint", "01ab", 8, "02cc", "tk")];
        Assert.True(await store.Database.WriteAsync((c, t) => foreign.TryCreditAsync(c, t, "tk", proofs, 8_000, Now, ct), ct));
        Assert.False(await store.Database.WriteAsync((c, t) => foreign.TryCreditAsync(c, t, "tk", proofs, 8_000, Now, ct), ct));
        Assert.False(await foreign.TryStartAsync(payment, ct)); // credited: never again
        Assert.Equal(ForeignPaymentState.Credited, (await foreign.FindAsync("tk", ct))!.State);
        Assert.Empty(await foreign.PendingAsync("n1", Now.AddSeconds(1), ct));
    }
}
