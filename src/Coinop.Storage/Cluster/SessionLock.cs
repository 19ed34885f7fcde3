using System.Data.Common;

namespace Coinop.Storage.Cluster;

/// <summary>
/// A PostgreSQL session-level advisory lock held on a connection of its own: exactly one connection, hence one market
/// node, holds it at a time, and PostgreSQL frees it the moment that connection ends (a node killed with -9 closes its
/// socket, so another node gets the lock at its next try, without waiting for a lease to lapse). On SQLite, where one
/// market process owns the file, the lock is always granted.
/// </summary>
public sealed class SessionLock : IAsyncDisposable
{
    private readonly DbConnection? _connection;
    private readonly long _key;

    private SessionLock(DbConnection? connection, long key)
    {
        _connection = connection;
        _key = key;
    }

    /// <summary>The lock when it was free, else null (never waits for it).</summary>
    public static async Task<SessionLock?> TryAcquireAsync(Database database, long key, CancellationToken cancellationToken)
    {
        if (database.Dialect != SqlDialect.Postgres)
        {
            return new SessionLock(null, key);
        }

        var connection = await database.OpenAsync(cancellationToken);
        try
        {
            await using var command = connection.CreateCommand();
            command.CommandText = "SELECT pg_try_advisory_lock(@key)";
            var parameter = command.CreateParameter();
            parameter.ParameterName = "key";
            parameter.Value = key;
            command.Parameters.Add(parameter);
            if (await command.ExecuteScalarAsync(cancellationToken) is true)
            {
                return new SessionLock(connection, key);
            }
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }

        await connection.DisposeAsync();
        return null;
    }

    /// <summary>
    /// True while the lock's connection still answers and PostgreSQL still shows this session holding the lock; false
    /// (or an exception) means another node may hold it now, so the holder must stop acting on it.
    /// </summary>
    public async Task<bool> StillHeldAsync(CancellationToken cancellationToken)
    {
        if (_connection is null)
        {
            return true;
        }

        await using var command = _connection.CreateCommand();
        command.CommandText = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted "
            + "AND ((classid::bigint << 32) | objid::bigint) = @key";
        var parameter = command.CreateParameter();
        parameter.ParameterName = "key";
        parameter.Value = _key;
        command.Parameters.Add(parameter);
        return Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken), System.Globalization.CultureInfo.InvariantCulture) == 1;
    }

    public async ValueTask DisposeAsync()
    {
        if (_connection is null)
        {
            return;
        }

        try
        {
            await using var command = _connection.CreateCommand();
            command.CommandText = "SELECT pg_advisory_unlock_all()";
            await command.ExecuteNonQueryAsync(CancellationToken.None);
        }
        catch (DbException)
        {
            // The connection is gone, and the lock with it.
        }

        await _connection.DisposeAsync();
    }
}
