using Coinop.TestKit;
using Npgsql;

namespace Coinop.Storage.Tests;

/// <summary>Where a store test runs: a fresh SQLite file, or a fresh database on the test PostgreSQL server.</summary>
public static class Stores
{
    public static TheoryData<SqlDialect> Dialects => [SqlDialect.Sqlite, SqlDialect.Postgres];

    public static Task<TestStore> CreateAsync(SqlDialect dialect, CancellationToken cancellationToken = default) =>
        CreateAsync(dialect, long.MaxValue, cancellationToken);

    /// <summary>A fresh store with the migrations up to <paramref name="upToVersion"/> applied.</summary>
    public static async Task<TestStore> CreateAsync(SqlDialect dialect, long upToVersion, CancellationToken cancellationToken = default)
    {
        if (dialect == SqlDialect.Sqlite)
        {
            var dir = new TempDirectory("coinop-store");
            var db = Database.Sqlite(Path.Combine(dir.Path, "market.db"));
            await Migrator.MigrateAsync(db, upToVersion, cancellationToken);
            return new TestStore(db, dir, null);
        }

        var name = "t_" + Guid.NewGuid().ToString("N");
        await using (var admin = new NpgsqlConnection(PostgresServer.ConnectionString))
        {
            await admin.OpenAsync(cancellationToken);
            await using var cmd = new NpgsqlCommand($"CREATE DATABASE {name}", admin);
            await cmd.ExecuteNonQueryAsync(cancellationToken);
        }

        var builder = new NpgsqlConnectionStringBuilder(PostgresServer.ConnectionString) { Database = name };
        var pg = Database.Postgres(builder.ConnectionString);
        await Migrator.MigrateAsync(pg, upToVersion, cancellationToken);
        return new TestStore(pg, null, name);
    }
}

public sealed class TestStore(Database database, TempDirectory? dir, string? postgresDatabase) : IAsyncDisposable
{
    public Database Database { get; } = database;

    public async ValueTask DisposeAsync()
    {
        await Database.DisposeAsync();
        dir?.Dispose();
        if (postgresDatabase is not null)
        {
            await using var admin = new NpgsqlConnection(PostgresServer.ConnectionString);
            await admin.OpenAsync();
            await using var cmd = new NpgsqlCommand($"DROP DATABASE IF EXISTS {postgresDatabase} WITH (FORCE)", admin);
            await cmd.ExecuteNonQueryAsync();
        }
    }
}
