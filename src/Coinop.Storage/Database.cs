using System.Data;
using System.Data.Common;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Coinop.Storage;

/// <summary>The SQL dialects the store speaks. Most statements are shared; DDL and a few queries differ.</summary>
public enum SqlDialect
{
    Sqlite,
    Postgres,
}

/// <summary>
/// The market's database: opens connections (SQLite's pragmas, PostgreSQL's pool), runs write transactions with retry
/// on contention (on SQLite in this process's writer turn, <see cref="SqliteWriter"/>) and reads. SQLite (WAL) is the
/// embedded default; PostgreSQL lets several market nodes share one store.
/// Every invariant that guards money or work lives in the schema (unique keys, conditional updates with
/// fencing tokens), never only in process memory, so it holds across market nodes too.
/// </summary>
public sealed class Database : IAsyncDisposable
{
    private readonly string _connectionString;
    private readonly NpgsqlDataSource? _postgres;

    /// <summary>SQLite has one writer at a time: this process's writers take turns on it (null on PostgreSQL).</summary>
    private readonly SqliteWriter? _writer;

    /// <summary>Native SQLite connections whose pragmas are set (weak: a connection the pool closes drops out).</summary>
    private readonly System.Runtime.CompilerServices.ConditionalWeakTable<SQLitePCL.sqlite3, object> _configured = [];
    private static readonly object Configured = new();

    /// <summary>The exclusive lock on the SQLite file's sibling <c>.lock</c>, when this process claimed the store.</summary>
    private FileStream? _claim;

    private Database(SqlDialect dialect, string connectionString, NpgsqlDataSource? postgres)
    {
        Dialect = dialect;
        _connectionString = connectionString;
        _postgres = postgres;
        _writer = dialect == SqlDialect.Sqlite ? new SqliteWriter(this) : null;
    }

    public SqlDialect Dialect { get; }

    /// <summary>Describes the store for logs and health output, without secrets.</summary>
    public string Description { get; private init; } = "";

    /// <summary>SQLite's default: a commit that leaves this many pages in the WAL checkpoints it, on the writer's own request.</summary>
    public const int DefaultWalAutocheckpointPages = 1000;

    /// <summary>How many WAL pages a commit may leave before it checkpoints the WAL itself (SQLite's wal_autocheckpoint).</summary>
    private int _walAutocheckpointPages = DefaultWalAutocheckpointPages;

    /// <summary>Write transactions committed so far (a checkpointer skips its turn when none came since its last).</summary>
    private long _commits;

    /// <summary>
    /// A SQLite database file (created if missing) in WAL mode. <paramref name="walAutocheckpointPages"/> is where a
    /// commit checkpoints the WAL itself: raise it when something calls <see cref="CheckpointAsync"/> in the background,
    /// and it stays the bound on the WAL's size should that fall behind.
    /// </summary>
    /// <param name="exclusive">
    /// Claims the file for this process (an exclusive lock on <c>PATH.lock</c>, held until disposed and released by the
    /// kernel when the process dies): a second process asking for it fails with <see cref="StoreInUseException"/>. For a
    /// process that keeps part of the store's state in memory (a market's balance reservations).
    /// </param>
    public static Database Sqlite(string path, int walAutocheckpointPages = DefaultWalAutocheckpointPages, bool exclusive = false)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(walAutocheckpointPages, 1);
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var claim = exclusive ? ClaimSqlite(full) : null;
        var builder = new SqliteConnectionStringBuilder
        {
            DataSource = full,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = true,
            DefaultTimeout = 30,
        };
        return new Database(SqlDialect.Sqlite, builder.ToString(), null)
        {
            Description = "sqlite:" + full,
            _walAutocheckpointPages = walAutocheckpointPages,
            _claim = claim,
        };
    }

    /// <summary>
    /// Claims a SQLite database file for this process until the returned stream is disposed (an exclusive lock on
    /// <c>PATH.lock</c> that the kernel drops when the process dies); <see cref="StoreInUseException"/> when another holds it.
    /// </summary>
    public static FileStream ClaimSqlite(string path)
    {
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        try
        {
            // FileShare.None takes an exclusive advisory lock (flock).
            return new FileStream(full + ".lock", FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException ex)
        {
            throw new StoreInUseException(full, ex);
        }
    }

    /// <summary>A PostgreSQL database shared by market nodes.</summary>
    public static Database Postgres(string connectionString)
    {
        var source = NpgsqlDataSource.Create(connectionString);
        var b = new NpgsqlConnectionStringBuilder(connectionString);
        return new Database(SqlDialect.Postgres, connectionString, source)
        {
            Description = $"postgres:{b.Host}:{b.Port}/{b.Database}",
        };
    }

    /// <summary>Opens a connection ready for use (SQLite pragmas applied).</summary>
    public async ValueTask<DbConnection> OpenAsync(CancellationToken cancellationToken)
    {
        if (_postgres is not null)
        {
            return await _postgres.OpenConnectionAsync(cancellationToken);
        }

        var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync(cancellationToken);
        // The pragmas hold for the native connection's life, and the pool hands the same one out again: set them once
        // per native connection, not on every open (they were three statements parsed and run per transaction).
        var handle = connection.Handle!;
        if (_configured.TryGetValue(handle, out _))
        {
            return connection;
        }

        await using var pragma = connection.CreateCommand();
        // NORMAL is durable across process crashes in WAL mode (a kill -9 loses nothing committed);
        // busy_timeout lets concurrent writers queue instead of failing.
        pragma.CommandText = "PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000; PRAGMA foreign_keys=ON; PRAGMA wal_autocheckpoint="
            + _walAutocheckpointPages.ToString(System.Globalization.CultureInfo.InvariantCulture) + ";";
        await pragma.ExecuteNonQueryAsync(cancellationToken);
        _configured.AddOrUpdate(handle, Configured);
        return connection;
    }

    /// <summary>
    /// Runs <paramref name="work"/> in one write transaction and commits it. SQLite takes the write lock at the
    /// start (BEGIN IMMEDIATE) so read-then-write never deadlocks; PostgreSQL runs READ COMMITTED and relies on
    /// conditional updates and unique keys. Serialization failures and deadlocks are retried a few times.
    /// </summary>
    public async Task<T> WriteAsync<T>(Func<DbConnection, DbTransaction, Task<T>> work, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            if (_writer is not null)
            {
                await _writer.TakeTurnAsync(cancellationToken);
            }

            try
            {
                var connection = _writer is not null ? await _writer.ConnectionAsync(cancellationToken) : await OpenAsync(cancellationToken);
                try
                {
                    await using var transaction = await connection.BeginTransactionAsync(
                        Dialect == SqlDialect.Sqlite ? IsolationLevel.Serializable : IsolationLevel.ReadCommitted, cancellationToken);
                    try
                    {
                        var result = await work(connection, transaction);
                        await transaction.CommitAsync(cancellationToken);
                        Interlocked.Increment(ref _commits);
                        return result;
                    }
                    catch (Exception ex) when (attempt < 5 && IsTransient(ex))
                    {
                        await SafeRollbackAsync(transaction);
                    }
                    catch
                    {
                        await SafeRollbackAsync(transaction);
                        throw;
                    }
                }
                finally
                {
                    if (_writer is null)
                    {
                        await connection.DisposeAsync();
                    }
                    else
                    {
                        _writer.DropIfUnusable(connection);
                    }
                }
            }
            finally
            {
                _writer?.EndTurn();
            }

            await Task.Delay(TimeSpan.FromMilliseconds(5 * attempt * attempt), cancellationToken);
        }
    }

    /// <summary>
    /// SQLite: runs <paramref name="work"/> in the writer's turn, on the writer connection, outside any transaction:
    /// nothing of this process commits meanwhile, so a read there sees the store as the next write will. For checks that
    /// must be decided against the same state as every write (<see cref="Ledger.BalanceReservations"/>) without the
    /// cost of a transaction. Only sound while this process is the store's one writer (<see cref="Sqlite"/> with
    /// <c>exclusive</c>).
    /// </summary>
    public async Task<T> UnderWriterAsync<T>(Func<DbConnection, Task<T>> work, CancellationToken cancellationToken)
    {
        if (_writer is null)
        {
            throw new InvalidOperationException("only a SQLite store has one writer turn");
        }

        await _writer.TakeTurnAsync(cancellationToken);

        try
        {
            return await work(await _writer.ConnectionAsync(cancellationToken));
        }
        finally
        {
            _writer.EndTurn();
        }
    }

    /// <summary>
    /// A command for <paramref name="sql"/> in <paramref name="transaction"/>. On SQLite's writer connection the command
    /// is kept, prepared, for the next transaction that runs the same text; elsewhere it is a new one. Set its
    /// parameters with <see cref="Statement.Set"/> (every parameter, on every use) and dispose the statement.
    /// </summary>
    public Statement Statement(DbConnection connection, DbTransaction? transaction, string sql)
    {
        if (_writer is not null && _writer.TryStatement(connection, transaction, sql, out var kept))
        {
            return kept;
        }

        var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = transaction;
        return new Statement(command, owned: true);
    }

    /// <summary>Write transactions this process committed so far.</summary>
    public long Commits => Interlocked.Read(ref _commits);

    /// <summary>
    /// Copies the WAL's committed pages into the database file (SQLite's PASSIVE checkpoint, with its fsyncs) on a
    /// connection of its own, so writers do not do it on a request's path; the next writer after a complete one starts
    /// the WAL over. Never waits for readers or the writer: what they still use is left for the next one. Null on
    /// PostgreSQL, which checkpoints on its own.
    /// </summary>
    public async Task<WalCheckpoint?> CheckpointAsync(CancellationToken cancellationToken)
    {
        if (Dialect != SqlDialect.Sqlite)
        {
            return null;
        }

        await using var connection = await OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA wal_checkpoint(PASSIVE)";
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken)
            ? new WalCheckpoint(reader.GetInt64(0) != 0, reader.GetInt64(1), reader.GetInt64(2))
            : null;
    }

    public Task WriteAsync(Func<DbConnection, DbTransaction, Task> work, CancellationToken cancellationToken) =>
        WriteAsync<bool>(async (c, t) =>
        {
            await work(c, t);
            return true;
        }, cancellationToken);

    /// <summary>
    /// Runs several reads that must see one state of the store (an audit comparing two tables while writers go on):
    /// a deferred transaction on SQLite (WAL gives it one snapshot from its first read), REPEATABLE READ on PostgreSQL.
    /// </summary>
    public async Task<T> ReadSnapshotAsync<T>(Func<DbConnection, DbTransaction, Task<T>> read, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken);
        await using var transaction = connection is SqliteConnection sqlite
            ? sqlite.BeginTransaction(deferred: true)
            : await connection.BeginTransactionAsync(IsolationLevel.RepeatableRead, cancellationToken);
        var result = await read(connection, transaction);
        await transaction.RollbackAsync(cancellationToken);
        return result;
    }

    /// <summary>Runs a read on a pooled connection.</summary>
    public async Task<T> ReadAsync<T>(Func<DbConnection, Task<T>> read, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken);
        return await read(connection);
    }

    /// <summary>True when <paramref name="ex"/> is a unique-key violation (a second spend, a duplicate id).</summary>
    public static bool IsUniqueViolation(Exception ex) => ex switch
    {
        SqliteException s => s.SqliteErrorCode == 19 && s.SqliteExtendedErrorCode is 2067 or 1555,
        PostgresException p => p.SqlState == PostgresErrorCodes.UniqueViolation,
        _ => false,
    };

    private static bool IsTransient(Exception ex) => ex switch
    {
        SqliteException s => s.SqliteErrorCode is 5 or 6, // BUSY, LOCKED
        PostgresException p => p.SqlState is PostgresErrorCodes.SerializationFailure or PostgresErrorCodes.DeadlockDetected,
        _ => false,
    };

    private static async Task SafeRollbackAsync(DbTransaction transaction)
    {
        try
        {
            await transaction.RollbackAsync(CancellationToken.None);
        }
        catch (Exception)
        {
            // The connection may already be broken; the transaction is gone either way.
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_postgres is not null)
        {
            await _postgres.DisposeAsync();
        }
        else
        {
            if (_writer is not null)
            {
                await _writer.DisposeAsync();
            }

            SqliteConnection.ClearAllPools();
            _claim?.Dispose();
        }
    }
}

/// <summary>Another process claimed this SQLite store (see <see cref="Database.Sqlite"/>).</summary>
public sealed class StoreInUseException(string path, Exception inner)
    : IOException($"{path} is in use by another coinop market process: one market per SQLite database (several nodes share a store with --postgres)", inner);

/// <summary>
/// What a WAL checkpoint found: the pages in the WAL and how many of them are now in the database file (all, unless a
/// reader or the writer still used the rest). Both are -1 when the database is not in WAL mode.
/// </summary>
public sealed record WalCheckpoint(bool Busy, long WalPages, long CheckpointedPages);
