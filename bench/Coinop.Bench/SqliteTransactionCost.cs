using System.Data;
using System.Diagnostics;
using System.Globalization;
using Microsoft.Data.Sqlite;

namespace Coinop.Bench;

/// <summary>
/// `sqlite-transaction [ROUNDS] [COUNT]`: the fixed cost of one SQLite write transaction as the market runs them (WAL,
/// synchronous=NORMAL, one kept connection), per transaction, with one one-row update inside: through
/// Microsoft.Data.Sqlite's <c>BeginTransaction</c>/<c>Commit</c> (which prepare <c>BEGIN IMMEDIATE</c> and <c>COMMIT</c>
/// anew each time) against the same two statements kept prepared; and an empty transaction. A paid request runs two
/// such transactions (the reservation must be committed before the provider starts), so this is its floor.
/// </summary>
public static class SqliteTransactionCost
{
    public static void Run(int rounds, int count)
    {
        var path = Path.Combine(Path.GetTempPath(), $"coinop-tx-bench-{Environment.ProcessId}.db");
        try
        {
            using var connection = new SqliteConnection($"Data Source={path};Pooling=false");
            connection.Open();
            Exec(connection, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; CREATE TABLE a(id INTEGER PRIMARY KEY, v INTEGER); INSERT INTO a VALUES (1, 0);");
            using var update = Prepared(connection, "UPDATE a SET v = v + 1 WHERE id = 1");
            using var begin = Prepared(connection, "BEGIN IMMEDIATE");
            using var commit = Prepared(connection, "COMMIT");
            for (var round = 1; round <= rounds; round++)
            {
                var library = Time(count, () =>
                {
                    using var transaction = connection.BeginTransaction(IsolationLevel.Serializable);
                    update.Transaction = transaction;
                    update.ExecuteNonQuery();
                    transaction.Commit();
                });
                update.Transaction = null;
                var kept = Time(count, () =>
                {
                    begin.ExecuteNonQuery();
                    update.ExecuteNonQuery();
                    commit.ExecuteNonQuery();
                });
                var empty = Time(count, () => connection.BeginTransaction(IsolationLevel.Serializable).Commit());
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"round {round}: BeginTransaction + update + Commit {library:0.0} µs; kept BEGIN IMMEDIATE + update + COMMIT {kept:0.0} µs; empty transaction {empty:0.0} µs"));
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

    private static double Time(int count, Action step)
    {
        var started = Stopwatch.GetTimestamp();
        for (var i = 0; i < count; i++)
        {
            step();
        }

        return Stopwatch.GetElapsedTime(started).TotalMicroseconds / count;
    }

    private static SqliteCommand Prepared(SqliteConnection connection, string sql)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Prepare();
        return command;
    }

    private static void Exec(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }
}
