using System.Diagnostics;
using System.Globalization;
using System.Text;
using Microsoft.Data.Sqlite;

namespace Coinop.Bench;

/// <summary>
/// `account-statements [ROUNDS] [COUNT] [PACE_MS]`: ways to apply a settle's five account changes on SQLite (one kept
/// connection, WAL, each in its own write transaction, statements kept prepared), per transaction, µs: five one-row conditional
/// updates (as before, inside Microsoft.Data.Sqlite's <c>BeginTransaction</c>/<c>Commit</c> and inside <c>BEGIN IMMEDIATE</c>/<c>COMMIT</c>
/// kept prepared); one <c>UPDATE … FROM (VALUES …)</c> with and without <c>RETURNING</c>; one <c>UPDATE … SET x = x +
/// CASE account … END WHERE account IN (…)</c> with and without <c>RETURNING</c>; and an empty transaction both ways. The ways take turns transaction by
/// transaction; with PACE_MS (`account-statements [ROUNDS] [COUNT] [PACE_MS]`) each transaction is that far from the
/// last, so it finds the CPU's caches cold as a paid request at 100 requests/s does.
/// </summary>
public static class AccountStatementCost
{
    private static readonly string[] Names = ["balance:k", "fee", "holds", "provider:p", "spent"];

    public static void Run(int rounds, int count, int paceMs)
    {
        var path = Path.Combine(Path.GetTempPath(), $"coinop-accounts-bench-{Environment.ProcessId}.db");
        try
        {
            using var connection = new SqliteConnection($"Data Source={path};Pooling=false");
            connection.Open();
            Exec(connection,
                """
                PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
                CREATE TABLE ledger_accounts (account TEXT PRIMARY KEY, kind TEXT NOT NULL, credited_msat INTEGER NOT NULL DEFAULT 0,
                    debited_msat INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL,
                    CHECK (kind = 'source' OR debited_msat <= credited_msat));
                CREATE INDEX ledger_accounts_kind ON ledger_accounts (kind);
                WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
                INSERT INTO ledger_accounts (account, kind, credited_msat, created_at) SELECT 'balance:' || i, 'balance', 1000, 0 FROM n;
                INSERT INTO ledger_accounts (account, kind, credited_msat, created_at) VALUES
                    ('balance:k', 'balance', 1000000000000, 0), ('fee', 'sink', 0, 0), ('holds', 'hold', 1000000000000, 0), ('provider:p', 'provider', 0, 0), ('spent', 'clearing', 0, 0);
                """);
            // A settle: holds → spent 3,000; spent → provider 2,700, fee 300; holds → balance 17,000.
            long[] credit = [17_000, 300, 0, 2_700, 3_000];
            long[] debit = [0, 0, 20_000, 0, 3_000];
            using var begin = Prepared(connection, "BEGIN IMMEDIATE");
            using var commit = Prepared(connection, "COMMIT");
            using var single = Prepared(connection,
                "UPDATE ledger_accounts SET credited_msat = credited_msat + @c, debited_msat = debited_msat + @d WHERE account = @n AND (kind = 'source' OR credited_msat + @c - debited_msat - @d >= 0)");
            single.Parameters.Add("@n", SqliteType.Text);
            single.Parameters.Add("@c", SqliteType.Integer);
            single.Parameters.Add("@d", SqliteType.Integer);
            var values = new StringBuilder("UPDATE ledger_accounts SET credited_msat = credited_msat + v.column2, debited_msat = debited_msat + v.column3 FROM (VALUES ");
            var cases = new StringBuilder();
            for (var i = 0; i < Names.Length; i++)
            {
                values.Append(i == 0 ? "" : ", ").Append(CultureInfo.InvariantCulture, $"(@n{i}, @c{i}, @d{i})");
            }

            values.Append(") AS v WHERE ledger_accounts.account = v.column1 AND (ledger_accounts.kind = 'source' OR ledger_accounts.credited_msat + v.column2 - ledger_accounts.debited_msat - v.column3 >= 0)");
            string Case(string p) => "CASE account " + string.Concat(Enumerable.Range(0, Names.Length).Select(i => $"WHEN @n{i} THEN @{p}{i} ")) + "END";
            cases.Append(CultureInfo.InvariantCulture, $"UPDATE ledger_accounts SET credited_msat = credited_msat + {Case("c")}, debited_msat = debited_msat + {Case("d")} ")
                .Append("WHERE account IN (" + string.Join(", ", Enumerable.Range(0, Names.Length).Select(i => $"@n{i}")) + ") ")
                .Append(CultureInfo.InvariantCulture, $"AND (kind = 'source' OR credited_msat + {Case("c")} - debited_msat - {Case("d")} >= 0)");
            using var joined = Multi(connection, values.ToString(), credit, debit);
            using var joinedReturning = Multi(connection, values + " RETURNING ledger_accounts.account", credit, debit);
            using var cased = Multi(connection, cases.ToString(), credit, debit);
            using var casedReturning = Multi(connection, cases + " RETURNING account", credit, debit);

            void Five()
            {
                for (var i = 0; i < Names.Length; i++)
                {
                    single.Parameters["@n"].Value = Names[i];
                    single.Parameters["@c"].Value = credit[i];
                    single.Parameters["@d"].Value = debit[i];
                    Check(single.ExecuteNonQuery(), 1);
                }
            }

            Action Kept(Action step) => () =>
            {
                begin.ExecuteNonQuery();
                step();
                commit.ExecuteNonQuery();
            };

            (string Name, Action Transaction)[] ways =
            [
                ("library BeginTransaction + five one-row updates + Commit", () =>
                {
                    using var transaction = connection.BeginTransaction(System.Data.IsolationLevel.Serializable);
                    single.Transaction = transaction;
                    Five();
                    transaction.Commit();
                    single.Transaction = null;
                }),
                ("five one-row updates", Kept(Five)),
                ("UPDATE FROM VALUES", Kept(() => Check(joined.ExecuteNonQuery(), Names.Length))),
                ("UPDATE FROM VALUES RETURNING", Kept(() => Read(joinedReturning))),
                ("UPDATE CASE IN", Kept(() => Check(cased.ExecuteNonQuery(), Names.Length))),
                ("UPDATE CASE IN RETURNING", Kept(() => Read(casedReturning))),
                ("library BeginTransaction + Commit, empty", () => connection.BeginTransaction(System.Data.IsolationLevel.Serializable).Commit()),
                ("kept BEGIN IMMEDIATE + COMMIT, empty", Kept(() => { })),
            ];
            var times = ways.ToDictionary(w => w.Name, _ => new List<double>());
            for (var round = 1; round <= rounds; round++)
            {
                // Paced, the ways take turns transaction by transaction, so a drift in the machine's speed hits all alike.
                for (var i = 0; i < count; i++)
                {
                    foreach (var (name, transaction) in ways)
                    {
                        var started = Stopwatch.GetTimestamp();
                        transaction();
                        times[name].Add(Stopwatch.GetElapsedTime(started).TotalMicroseconds);
                        if (paceMs > 0)
                        {
                            Thread.Sleep(paceMs);
                        }
                    }
                }
            }

            foreach (var (name, list) in times)
            {
                list.Sort();
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{name}: transaction p50 {list[list.Count / 2]:0.0} µs, p90 {list[list.Count * 9 / 10]:0.0} µs ({list.Count} transactions)"));
            }
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            foreach (var file in new[] { path, path + "-wal", path + "-shm" })
            {
                File.Delete(file);
            }
        }
    }

    private static void Read(SqliteCommand command)
    {
        using var reader = command.ExecuteReader();
        var rows = 0;
        while (reader.Read())
        {
            _ = reader.GetString(0);
            rows++;
        }

        Check(rows, Names.Length);
    }

    private static void Check(int rows, int expected)
    {
        if (rows != expected)
        {
            throw new InvalidOperationException($"{rows} rows changed, not {expected}");
        }
    }

    private static SqliteCommand Multi(SqliteConnection connection, string sql, long[] credit, long[] debit)
    {
        var command = Prepared(connection, sql);
        for (var i = 0; i < Names.Length; i++)
        {
            command.Parameters.AddWithValue($"@n{i}", Names[i]);
            command.Parameters.AddWithValue($"@c{i}", credit[i]);
            command.Parameters.AddWithValue($"@d{i}", debit[i]);
        }

        return command;
    }

    private static SqliteCommand Prepared(SqliteConnection connection, string sql)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        return command;
    }

    private static void Exec(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }
}
