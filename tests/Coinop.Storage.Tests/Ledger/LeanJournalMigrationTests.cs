using Coinop.Storage.Ledger;
using Coinop.Storage.Reports;
using Dapper;

namespace Coinop.Storage.Tests.Ledger;

/// <summary>
/// Migration 0100 rebuilds the journal's indexes (and on SQLite the table, without AUTOINCREMENT) under an existing
/// ledger: every entry keeps its id and content, the journal stays append-only, and the balance page and payout list
/// read the same as before.
/// </summary>
public class LeanJournalMigrationTests
{
    private const long Before = 95;
    private static readonly DateTimeOffset Now = DateTimeOffset.FromUnixTimeMilliseconds(1_800_000_000_000);

    [Theory]
    [MemberData(nameof(Stores.Dialects), MemberType = typeof(Stores))]
    public async Task An_existing_journal_keeps_every_entry_and_reads_the_same_after_the_migration(SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var store = await Stores.CreateAsync(dialect, Before, ct);
        var db = store.Database;
        var ledger = new LedgerStore(db);
        var reports = new MarketReportStore(db);
        var alice = LedgerAccounts.Balance("alice");
        var provider = LedgerAccounts.Provider("p1");
        await db.WriteAsync((c, t) => ledger.PostAsync(c, t, "payment", "t1", [new(LedgerAccounts.Received, alice, 9_000)], Now, ct), ct);
        for (var i = 0; i < 3; i++)
        {
            var id = "r" + i;
            await db.WriteAsync((c, t) => ledger.PostAsync(c, t, "reserve", id, [new(alice, LedgerAccounts.Holds, 2_000)], Now, ct), ct);
            await db.WriteAsync((c, t) => ledger.PostAsync(c, t, "settle", id,
            [
                new(LedgerAccounts.Holds, LedgerAccounts.Spent, 1_000),
                new(LedgerAccounts.Spent, provider, 900),
                new(LedgerAccounts.Spent, LedgerAccounts.Fee, 100),
                new(LedgerAccounts.Holds, alice, 1_000),
            ], Now, ct), ct);
        }

        await db.WriteAsync((c, t) => ledger.PostAsync(c, t, "payout", "o1", [new(provider, LedgerAccounts.PaidOut, 2_000)], Now, ct), ct);
        var entriesBefore = await EntriesAsync(db, ct);
        var movementsBefore = await reports.MovementsAsync(alice, 50, ct);
        var payoutsBefore = await reports.PayoutsAsync(50, ct);
        Assert.Equal(17, entriesBefore.Count);
        Assert.Equal(4, movementsBefore.Count);

        Assert.True(await Migrator.MigrateAsync(db, ct) >= 1);

        Assert.Equal(entriesBefore, await EntriesAsync(db, ct));
        Assert.Equal(movementsBefore, await reports.MovementsAsync(alice, 50, ct));
        Assert.Equal(payoutsBefore, await reports.PayoutsAsync(50, ct));
        Assert.Empty(await ledger.AuditAsync(ct));

        // New entries follow the old ones, and the journal is still append-only.
        await db.WriteAsync((c, t) => ledger.PostAsync(c, t, "reserve", "r9", [new(alice, LedgerAccounts.Holds, 500)], Now, ct), ct);
        var after = await EntriesAsync(db, ct);
        Assert.True(after[^1].Id > entriesBefore[^1].Id);
        await Assert.ThrowsAnyAsync<Exception>(() => db.WriteAsync((c, t) => c.ExecuteAsync("UPDATE ledger_entries SET amount_msat = 1", transaction: t), ct));
        await Assert.ThrowsAnyAsync<Exception>(() => db.WriteAsync((c, t) => c.ExecuteAsync("DELETE FROM ledger_entries", transaction: t), ct));
        Assert.Equal(after, await EntriesAsync(db, ct));

        var indexes = await db.ReadAsync(async c => (await c.QueryAsync<string>(dialect == SqlDialect.Sqlite
            ? "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'ledger_entries' ORDER BY name"
            : "SELECT indexname FROM pg_indexes WHERE tablename = 'ledger_entries' AND indexname <> 'ledger_entries_pkey' ORDER BY indexname")).ToList(), ct);
        Assert.Equal(["ledger_entries_at", "ledger_entries_balance_from", "ledger_entries_balance_to", "ledger_entries_paid_out"], indexes);
        if (dialect == SqlDialect.Sqlite)
        {
            Assert.Equal(0, await db.ReadAsync(c => c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM sqlite_sequence WHERE name = 'ledger_entries'"), ct));
        }
    }

    [Theory]
    [MemberData(nameof(Stores.Dialects), MemberType = typeof(Stores))]
    public async Task Movements_are_read_only_for_balance_accounts(SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var store = await Stores.CreateAsync(dialect, ct);
        // Only balance accounts' entries are indexed by account: another account would silently read as empty.
        await Assert.ThrowsAsync<ArgumentException>(() => new MarketReportStore(store.Database).MovementsAsync(LedgerAccounts.Provider("p1"), 10, ct));
    }

    private static Task<List<Entry>> EntriesAsync(Database db, CancellationToken ct) =>
        db.ReadAsync(async c => (await c.QueryAsync<Entry>(
            "SELECT id AS Id, at AS At, event AS Event, reference AS Reference, from_account AS FromAccount, to_account AS ToAccount, amount_msat AS AmountMsat FROM ledger_entries ORDER BY id"))
            .ToList(), ct);

    private sealed record Entry(long Id, long At, string Event, string Reference, string FromAccount, string ToAccount, long AmountMsat);
}
