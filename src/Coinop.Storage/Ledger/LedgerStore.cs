using System.Data.Common;
using System.Globalization;
using System.Text;

namespace Coinop.Storage.Ledger;

/// <summary>
/// The double-entry ledger: accounts with running totals and an append-only journal. <see cref="PostAsync"/> runs
/// inside the caller's transaction (the one that spends proofs, closes a hold or issues ecash), so money moves
/// together with the event that moves it or not at all. The reads of the whole books are <see cref="LedgerBooks"/>'s.
/// </summary>
public interface ILedgerStore
{
    /// <summary>
    /// Writes <paramref name="transfers"/> to the journal and the account totals. Accounts are updated in name order
    /// (no deadlocks between transactions) with conditional updates (see <see cref="AccountPostings"/>): if one would go
    /// below zero the method throws <see cref="InsufficientFundsException"/> and the caller's transaction must roll
    /// back. Balance, provider and workload accounts are opened when first credited.
    /// </summary>
    Task PostAsync(DbConnection c, DbTransaction t, string @event, string reference, IReadOnlyList<LedgerTransfer> transfers, DateTimeOffset now,
        CancellationToken cancellationToken);

    /// <summary>Opens an empty account; false when it already exists.</summary>
    Task<bool> OpenAsync(DbConnection c, DbTransaction t, string account, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>
    /// An account's balance in msat, less what requests in flight reserve of it in process (see
    /// <see cref="BalanceReservations"/>): what its owner may spend or withdraw. Null when there is no such account.
    /// </summary>
    Task<long?> BalanceAsync(string account, CancellationToken cancellationToken);

    Task<long?> BalanceAsync(DbConnection c, DbTransaction? t, string account, CancellationToken cancellationToken);

    /// <summary>An account's balance as posted (credited − debited), reservations not subtracted; null when there is no such account.</summary>
    Task<long?> PostedBalanceAsync(DbConnection c, DbTransaction? t, string account, CancellationToken cancellationToken);

    /// <summary>
    /// <see cref="BalanceAsync(DbConnection, DbTransaction?, string, CancellationToken)"/> for a transaction that goes on
    /// to debit what it read (a refund, a payout): on PostgreSQL the account's row stays locked until the transaction
    /// ends, so a reservation on another connection cannot take part of it between the read and the debit (SQLite's one
    /// writer already excludes that).
    /// </summary>
    Task<long?> BalanceToDebitAsync(DbConnection c, DbTransaction t, string account, CancellationToken cancellationToken);

    Task<LedgerSummary> SummaryAsync(CancellationToken cancellationToken);

    Task<ProviderEarnings> EarningsAsync(string providerId, CancellationToken cancellationToken);

    /// <summary>
    /// Recomputes every account from the journal and compares it with the stored totals, the HELD holds with the
    /// holds account, and checks that no closed workload's account still holds money. Returns the discrepancies (none in a healthy store). Reads the whole journal: for audits and tests.
    /// </summary>
    Task<IReadOnlyList<string>> AuditAsync(CancellationToken cancellationToken);
}

/// <param name="reservations">
/// Balance reservations kept in process (a single-node SQLite market): every SQLite posting leaves each account it
/// debits at least what is reserved of it, and balances read are net of them.
/// </param>
public sealed class LedgerStore(Database database, BalanceReservations? reservations = null) : ILedgerStore
{
    /// <summary>The reads of the whole books (reports, audits); this class moves money and reads single balances.</summary>
    private readonly LedgerBooks _books = new(database);

    public Task<LedgerSummary> SummaryAsync(CancellationToken cancellationToken) => _books.SummaryAsync(cancellationToken);

    public Task<ProviderEarnings> EarningsAsync(string providerId, CancellationToken cancellationToken) => _books.EarningsAsync(providerId, cancellationToken);

    public Task<IReadOnlyList<string>> AuditAsync(CancellationToken cancellationToken) => _books.AuditAsync(cancellationToken);

    public async Task PostAsync(DbConnection c, DbTransaction t, string @event, string reference, IReadOnlyList<LedgerTransfer> transfers,
        DateTimeOffset now, CancellationToken cancellationToken)
    {
        var moves = transfers.Where(x => x.AmountMsat != 0).ToList();
        if (moves.Count == 0)
        {
            return;
        }

        var postings = AccountPostings.Of(moves);
        if (database.Dialect == SqlDialect.Postgres)
        {
            await ChangeAccountsTogetherAsync(c, t, postings, now, cancellationToken);
        }
        else
        {
            await ChangeAccountsOneByOneAsync(c, t, postings, now, cancellationToken);
        }

        // One statement for the journal rows (its text depends only on their number, so it stays prepared).
        using var journal = database.Statement(c, t, JournalInsert(moves.Count));
        journal.Set("@at", now.ToUnixTimeMilliseconds()).Set("@event", @event).Set("@reference", reference);
        for (var i = 0; i < moves.Count; i++)
        {
            journal.Set(Numbered(EntryFrom, i), moves[i].From).Set(Numbered(EntryTo, i), moves[i].To).Set(Numbered(EntryAmount, i), moves[i].AmountMsat);
        }

        await journal.ExecuteAsync(cancellationToken);
    }

    /// <summary>
    /// SQLite: one prepared one-row statement per account. In process and cold (as at 100 requests/s) that is cheaper
    /// than one statement for all of them, which stages its VALUES and RETURNING rows in temporary b-trees
    /// (`Coinop.Bench account-statements`, see docs/benchmarks.md).
    /// </summary>
    private async Task ChangeAccountsOneByOneAsync(DbConnection c, DbTransaction t, IReadOnlyList<AccountPosting> postings, DateTimeOffset now,
        CancellationToken cancellationToken)
    {
        foreach (var p in postings)
        {
            int updated;
            if (p.MayOpen && p.DebitMsat == 0)
            {
                // Only credited (a provider's share, what returns to a balance): opened and credited in one statement.
                using var upsert = database.Statement(c, t, OpenAccount);
                updated = await upsert.Set("@account", p.Account).Set("@kind", p.Kind).Set("@now", now.ToUnixTimeMilliseconds()).Set("@credit", p.CreditMsat)
                    .Set("@debit", 0L).ExecuteAsync(cancellationToken);
            }
            else
            {
                if (p.MayOpen)
                {
                    await OpenAsync(c, t, p.Account, now, cancellationToken);
                }

                // What requests in flight reserve of the account stays in it (the settle of a reservation took its own out first).
                var floor = p.DebitMsat > 0 && reservations is not null ? reservations.ReservedMsat(p.Account) : 0;
                using var update = database.Statement(c, t, UpdateAccount);
                updated = await update.Set("@account", p.Account).Set("@credit", p.CreditMsat).Set("@debit", p.DebitMsat).Set("@floor", floor)
                    .ExecuteAsync(cancellationToken);
            }

            if (updated != 1)
            {
                throw new InsufficientFundsException(p.Account);
            }
        }
    }

    /// <summary>
    /// PostgreSQL: every existing account's change in one conditional statement, one round trip instead of one per
    /// account (five in a settle). An account it did not change is missing or would go below zero: the posting fails,
    /// unless the account is one the posting may open (never below zero, see <see cref="AccountPostings"/>): then it is
    /// opened with its totals, or added to if another transaction opened it meanwhile.
    /// </summary>
    private async Task ChangeAccountsTogetherAsync(DbConnection c, DbTransaction t, IReadOnlyList<AccountPosting> postings, DateTimeOffset now,
        CancellationToken cancellationToken)
    {
        var changed = new HashSet<string>(postings.Count, StringComparer.Ordinal);
        using (var accounts = database.Statement(c, t, AccountsUpdate(postings.Count)))
        {
            for (var i = 0; i < postings.Count; i++)
            {
                var p = postings[i];
                accounts.Set(Numbered(AccountName, i), p.Account).Set(Numbered(AccountCredit, i), p.CreditMsat).Set(Numbered(AccountDebit, i), p.DebitMsat);
            }

            await using var reader = await accounts.ReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                changed.Add(reader.GetString(0));
            }
        }

        foreach (var p in postings)
        {
            if (changed.Contains(p.Account))
            {
                continue;
            }

            if (!p.MayOpen)
            {
                throw new InsufficientFundsException(p.Account);
            }

            using var open = database.Statement(c, t, OpenAccount);
            await open.Set("@account", p.Account).Set("@kind", p.Kind).Set("@now", now.ToUnixTimeMilliseconds()).Set("@credit", p.CreditMsat)
                .Set("@debit", p.DebitMsat).ExecuteAsync(cancellationToken);
        }
    }

    public async Task<bool> OpenAsync(DbConnection c, DbTransaction t, string account, DateTimeOffset now, CancellationToken cancellationToken)
    {
        using var insert = database.Statement(c, t,
            "INSERT INTO ledger_accounts (account, kind, created_at) VALUES (@account, @kind, @now) ON CONFLICT (account) DO NOTHING");
        return await insert.Set("@account", account).Set("@kind", LedgerAccounts.KindOf(account)).Set("@now", now.ToUnixTimeMilliseconds()).ExecuteAsync(cancellationToken) == 1;
    }

    public Task<long?> BalanceAsync(string account, CancellationToken cancellationToken) =>
        database.ReadAsync(c => BalanceAsync(c, null, account, cancellationToken), cancellationToken);

    public async Task<long?> BalanceAsync(DbConnection c, DbTransaction? t, string account, CancellationToken cancellationToken) =>
        await PostedBalanceAsync(c, t, account, cancellationToken) is { } posted ? posted - (reservations?.ReservedMsat(account) ?? 0) : null;

    public async Task<long?> BalanceToDebitAsync(DbConnection c, DbTransaction t, string account, CancellationToken cancellationToken)
    {
        if (database.Dialect != SqlDialect.Postgres)
        {
            return await BalanceAsync(c, t, account, cancellationToken);
        }

        return await ReadBalanceAsync(c, t, account, SelectBalance + " FOR UPDATE", cancellationToken);
    }

    public Task<long?> PostedBalanceAsync(DbConnection c, DbTransaction? t, string account, CancellationToken cancellationToken) =>
        ReadBalanceAsync(c, t, account, SelectBalance, cancellationToken);

    private const string SelectBalance = "SELECT credited_msat - debited_msat FROM ledger_accounts WHERE account = @account";

    private async Task<long?> ReadBalanceAsync(DbConnection c, DbTransaction? t, string account, string sql, CancellationToken cancellationToken)
    {
        using var select = database.Statement(c, t, sql);
        return await select.Set("@account", account).ScalarAsync(cancellationToken) is { } value and not DBNull ? Convert.ToInt64(value, CultureInfo.InvariantCulture) : null;
    }

    private const string UpdateAccount =
        """
        UPDATE ledger_accounts SET credited_msat = credited_msat + @credit, debited_msat = debited_msat + @debit
        WHERE account = @account AND (kind = 'source' OR credited_msat + @credit - debited_msat - @debit >= @floor)
        """;

    /// <summary>
    /// The accounts' change, one VALUES row per account (account, credit, debit) in name order (PostgreSQL's plan, a
    /// nested loop over the VALUES, locks the rows in that order), each applied only when it leaves the account at zero
    /// or more (the source excepted); returns the accounts it changed.
    /// </summary>
    private static string BuildAccountsUpdate(int rows)
    {
        var sql = new StringBuilder("UPDATE ledger_accounts SET credited_msat = credited_msat + v.column2, debited_msat = debited_msat + v.column3 FROM (VALUES ");
        for (var i = 0; i < rows; i++)
        {
            sql.Append(i == 0 ? "" : ", ").Append(CultureInfo.InvariantCulture, $"(@n{i}, @c{i}, @d{i})");
        }

        return sql.Append(
            """
            ) AS v
            WHERE ledger_accounts.account = v.column1
                AND (ledger_accounts.kind = 'source' OR ledger_accounts.credited_msat + v.column2 - ledger_accounts.debited_msat - v.column3 >= 0)
            RETURNING ledger_accounts.account
            """).ToString();
    }

    private static readonly string[] AccountsUpdates = [.. Enumerable.Range(0, 9).Select(BuildAccountsUpdate)];

    private static string AccountsUpdate(int rows) => rows < AccountsUpdates.Length ? AccountsUpdates[rows] : BuildAccountsUpdate(rows);

    /// <summary>Opens an account with a posting's totals (credited at least what is debited, so the CHECKs hold), or adds them to it.</summary>
    private const string OpenAccount =
        """
        INSERT INTO ledger_accounts (account, kind, created_at, credited_msat, debited_msat) VALUES (@account, @kind, @now, @credit, @debit)
        ON CONFLICT (account) DO UPDATE SET
            credited_msat = ledger_accounts.credited_msat + excluded.credited_msat, debited_msat = ledger_accounts.debited_msat + excluded.debited_msat
        """;

    private static readonly string[] JournalInserts = [.. Enumerable.Range(0, 9).Select(BuildJournalInsert)];

    private static string JournalInsert(int rows) => rows < JournalInserts.Length ? JournalInserts[rows] : BuildJournalInsert(rows);

    private static string BuildJournalInsert(int rows)
    {
        var sql = new StringBuilder("INSERT INTO ledger_entries (at, event, reference, from_account, to_account, amount_msat) VALUES ");
        for (var i = 0; i < rows; i++)
        {
            sql.Append(i == 0 ? "" : ", ").Append(CultureInfo.InvariantCulture, $"(@at, @event, @reference, @f{i}, @t{i}, @a{i})");
        }

        return sql.ToString();
    }

    private const int EntryFrom = 0, EntryTo = 1, EntryAmount = 2, AccountName = 3, AccountCredit = 4, AccountDebit = 5;

    private static readonly string[] Prefixes = ["f", "t", "a", "n", "c", "d"];

    /// <summary>Parameter names by prefix and row, made once.</summary>
    private static readonly string[][] Names = [.. Prefixes.Select(p => Enumerable.Range(0, 8).Select(i => "@" + p + i.ToString(CultureInfo.InvariantCulture)).ToArray())];

    private static string Numbered(int prefix, int i) => i < 8 ? Names[prefix][i] : "@" + Prefixes[prefix] + i.ToString(CultureInfo.InvariantCulture);
}
