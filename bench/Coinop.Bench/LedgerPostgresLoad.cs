using System.Data.Common;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Coinop.Storage;
using Coinop.Storage.Ledger;
using Npgsql;

namespace Coinop.Bench;

/// <summary>
/// `ledger-postgres [ROUNDS] [REQUESTS] [PACE_MS]` with COINOP_BENCH_POSTGRES (a connection string; a scratch database
/// is made on that server and dropped after): a balance-key request's two store transactions (as <c>RequestHolds</c> runs
/// them) on PostgreSQL, the ledger's accounts changed one statement per account (as before, copied here) and in one
/// statement (<see cref="LedgerStore"/>), taking turns request by request on the same database.
/// </summary>
public static class LedgerPostgresLoad
{
    private const string Balance = "balance:kbench";

    private static readonly DateTimeOffset Now = DateTimeOffset.FromUnixTimeMilliseconds(1_800_000_000_000);

    public static async Task RunAsync(int rounds, int requests, int paceMs)
    {
        var server = Environment.GetEnvironmentVariable("COINOP_BENCH_POSTGRES")
            ?? throw new InvalidOperationException("set COINOP_BENCH_POSTGRES to a PostgreSQL connection string");
        var name = "bench_" + Guid.NewGuid().ToString("N");
        await Admin(server, $"CREATE DATABASE {name}");
        try
        {
            var db = Database.Postgres(new NpgsqlConnectionStringBuilder(server) { Database = name }.ConnectionString);
            await using (db)
            {
                await Migrator.MigrateAsync(db, long.MaxValue, CancellationToken.None);
                var after = new LedgerStore(db);
                var before = new OneByOne(db);
                await db.WriteAsync((c, t) => after.PostAsync(c, t, "payment", "fund", [new(LedgerAccounts.Received, Balance, 1_000_000_000_000)], Now, CancellationToken.None),
                    CancellationToken.None);
                var holds = new PaymentHoldStore(db);
                var times = new Dictionary<string, List<double>>(StringComparer.Ordinal) { ["one statement per account (before)"] = [], ["one statement (after)"] = [] };
                var n = 0;
                for (var i = 0; i < 50; i++)
                {
                    await RequestAsync(db, holds, before.PostAsync, n++);
                    await RequestAsync(db, holds, after.PostAsync, n++);
                }

                for (var round = 0; round < rounds; round++)
                {
                    for (var i = 0; i < requests; i++)
                    {
                        foreach (var (label, post) in new (string, PostAsync)[] { ("one statement per account (before)", before.PostAsync), ("one statement (after)", after.PostAsync) })
                        {
                            var started = Stopwatch.GetTimestamp();
                            await RequestAsync(db, holds, post, n++);
                            times[label].Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                            if (paceMs > 0)
                            {
                                await Task.Delay(paceMs);
                            }
                        }
                    }
                }

                foreach (var (label, list) in times)
                {
                    list.Sort();
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{label}: reserve + settle p50 {list[list.Count / 2]:0.000} ms, p90 {list[list.Count * 9 / 10]:0.000} ms ({list.Count} requests)"));
                }

                var problems = await after.AuditAsync(CancellationToken.None);
                Console.WriteLine(problems.Count == 0 ? "ledger audit: clean" : "ledger audit: " + string.Join("; ", problems));
            }
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await Admin(server, $"DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        }
    }

    private delegate Task PostAsync(DbConnection c, DbTransaction t, string @event, string reference, IReadOnlyList<LedgerTransfer> transfers, DateTimeOffset now,
        CancellationToken cancellationToken);

    private static async Task RequestAsync(Database db, PaymentHoldStore holds, PostAsync post, int n)
    {
        var id = Guid.CreateVersion7(Now.AddMilliseconds(n)).ToString();
        var now = Now.AddMilliseconds(n);
        await db.WriteAsync(async (c, t) =>
        {
            await post(c, t, "reserve", id, [new LedgerTransfer(Balance, LedgerAccounts.Holds, 20_000)], now, CancellationToken.None);
            await holds.InsertAsync(c, t, new PaymentHold(id, "node-bench", HoldPayer.Balance, Balance, 20_000, HoldState.Held, now), CancellationToken.None);
        }, CancellationToken.None);
        await db.WriteAsync(async (c, t) =>
        {
            var hold = await holds.TryCloseAsync(c, t, id, new HoldOutcome(HoldState.Settled, 3_000, "p1"), now, CancellationToken.None)
                ?? throw new InvalidOperationException("the hold was not held");
            await post(c, t, "settle", id,
            LedgerStoreLoad.SettleTransfers(hold), now, CancellationToken.None);
        }, CancellationToken.None);
    }

    private static async Task Admin(string server, string sql)
    {
        await using var admin = new NpgsqlConnection(server);
        await admin.OpenAsync();
        await using var command = new NpgsqlCommand(sql, admin);
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>The ledger's posting as it was before: one conditional statement per account, then the journal.</summary>
    private sealed class OneByOne(Database database)
    {
        public async Task PostAsync(DbConnection c, DbTransaction t, string @event, string reference, IReadOnlyList<LedgerTransfer> transfers, DateTimeOffset now,
            CancellationToken cancellationToken)
        {
            var postings = AccountPostings.Of(transfers);
            foreach (var p in postings)
            {
                using var statement = p.MayOpen && p.DebitMsat == 0
                    ? database.Statement(c, t,
                        """
                        INSERT INTO ledger_accounts (account, kind, created_at, credited_msat) VALUES (@account, @kind, @now, @credit)
                        ON CONFLICT (account) DO UPDATE SET credited_msat = ledger_accounts.credited_msat + excluded.credited_msat
                        """).Set("@account", p.Account).Set("@kind", p.Kind).Set("@now", now.ToUnixTimeMilliseconds()).Set("@credit", p.CreditMsat)
                    : database.Statement(c, t,
                        """
                        UPDATE ledger_accounts SET credited_msat = credited_msat + @credit, debited_msat = debited_msat + @debit
                        WHERE account = @account AND (kind = 'source' OR credited_msat + @credit - debited_msat - @debit >= 0)
                        """).Set("@account", p.Account).Set("@credit", p.CreditMsat).Set("@debit", p.DebitMsat);
                if (await statement.ExecuteAsync(cancellationToken) != 1)
                {
                    throw new InsufficientFundsException(p.Account);
                }
            }

            var moves = transfers.Where(x => x.AmountMsat != 0).ToList();
            var sql = new StringBuilder("INSERT INTO ledger_entries (at, event, reference, from_account, to_account, amount_msat) VALUES ");
            for (var i = 0; i < moves.Count; i++)
            {
                sql.Append(i == 0 ? "" : ", ").Append(CultureInfo.InvariantCulture, $"(@at, @event, @reference, @f{i}, @t{i}, @a{i})");
            }

            using var journal = database.Statement(c, t, sql.ToString());
            journal.Set("@at", now.ToUnixTimeMilliseconds()).Set("@event", @event).Set("@reference", reference);
            for (var i = 0; i < moves.Count; i++)
            {
                journal.Set("@f" + i.ToString(CultureInfo.InvariantCulture), moves[i].From).Set("@t" + i.ToString(CultureInfo.InvariantCulture), moves[i].To)
                    .Set("@a" + i.ToString(CultureInfo.InvariantCulture), moves[i].AmountMsat);
            }

            await journal.ExecuteAsync(cancellationToken);
        }
    }
}
