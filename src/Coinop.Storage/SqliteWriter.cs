using System.Data;
using System.Data.Common;
using Microsoft.Data.Sqlite;

namespace Coinop.Storage;

/// <summary>
/// SQLite's one writer in this process: whose turn it is to write, and the connection the turn writes on, kept open
/// with its commands prepared. <see cref="Database"/> runs transactions on it; this decides only who goes next and
/// keeps what the writer reuses.
/// </summary>
/// <remarks>
/// Writers of this process queue here, asynchronously, rather than in SQLite's busy handler, which blocks a
/// thread-pool thread while it sleeps and retries (up to 100 ms between tries): with enough writers waiting there, the
/// pool had no thread left for the one holding the lock, and everything stalled until the busy timeout. SQLite still
/// enforces the lock; this only decides who asks for it next.
/// </remarks>
internal sealed class SqliteWriter(Database database) : IAsyncDisposable
{
    /// <summary>How long a writer waits for the one before it, like the busy timeout it replaces.</summary>
    private static readonly TimeSpan WriterWait = TimeSpan.FromSeconds(30);

    private readonly SemaphoreSlim _turn = new(1, 1);

    /// <summary>
    /// The writer connection (used only by whoever holds the turn), with the commands of <see cref="Statement"/> kept
    /// prepared on it: a paid request runs about fifteen statements in two transactions, and preparing each anew
    /// (Microsoft.Data.Sqlite keeps no statement cache across commands) was most of their cost.
    /// </summary>
    private SqliteConnection? _connection;

    private readonly Dictionary<string, SqliteCommand> _prepared = new(StringComparer.Ordinal);

    /// <summary>Waits for this process's turn to write; a SQLite BUSY error when none comes within the wait.</summary>
    public async Task TakeTurnAsync(CancellationToken cancellationToken)
    {
        if (!await _turn.WaitAsync(WriterWait, cancellationToken))
        {
            throw new SqliteException($"database is locked: no turn to write within {WriterWait.TotalSeconds:0} s", 5);
        }
    }

    public void EndTurn() => _turn.Release();

    /// <summary>The writer connection, opened anew when there is none or it broke. Only in the turn.</summary>
    public async ValueTask<DbConnection> ConnectionAsync(CancellationToken cancellationToken)
    {
        if (_connection is { State: ConnectionState.Open } open)
        {
            return open;
        }

        Drop();
        var connection = (SqliteConnection)await database.OpenAsync(cancellationToken);
        _connection = connection;
        return connection;
    }

    /// <summary>
    /// After a transaction on the writer connection: one that broke, or was left inside a transaction a rollback could
    /// not end, is dropped, and the next writer opens a fresh one. Only in the turn.
    /// </summary>
    public void DropIfUnusable(DbConnection connection)
    {
        if (connection.State != ConnectionState.Open || SQLitePCL.raw.sqlite3_get_autocommit(((SqliteConnection)connection).Handle) == 0)
        {
            Drop();
        }
    }

    /// <summary>
    /// The kept, prepared command for <paramref name="sql"/> when <paramref name="connection"/> is the writer's; false
    /// on any other connection (a read's, or PostgreSQL's).
    /// </summary>
    public bool TryStatement(DbConnection connection, DbTransaction? transaction, string sql, out Statement statement)
    {
        if (connection is not SqliteConnection sqlite || !ReferenceEquals(sqlite, _connection))
        {
            statement = default;
            return false;
        }

        if (!_prepared.TryGetValue(sql, out var kept))
        {
            kept = sqlite.CreateCommand();
            kept.CommandText = sql;
            _prepared[sql] = kept;
        }

        kept.Transaction = (SqliteTransaction?)transaction;
        statement = new Statement(kept, owned: false);
        return true;
    }

    /// <summary>
    /// Closes the writer connection once the writer in its turn (if any) is done. The turn itself stays usable: a writer
    /// still queued gets a fresh connection rather than an <see cref="ObjectDisposedException"/>.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (await _turn.WaitAsync(WriterWait))
        {
            Drop();
            _turn.Release();
        }
    }

    private void Drop()
    {
        foreach (var command in _prepared.Values)
        {
            command.Dispose();
        }

        _prepared.Clear();
        _connection?.Dispose();
        _connection = null;
    }
}
