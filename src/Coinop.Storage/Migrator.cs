using System.Data.Common;
using Dapper;

namespace Coinop.Storage;

/// <summary>
/// Applies the embedded SQL migrations of the database's dialect in order, each once, each in its own
/// transaction. Files live in <c>Migrations/{Sqlite|Postgres}/NNNN_name.sql</c>; numbering is shared, so
/// both dialects always reach the same schema version. On PostgreSQL an advisory lock keeps two market
/// nodes starting at once from racing.
/// </summary>
public static class Migrator
{
    private const long PostgresLockKey = 0x436f696e6f70; // "Coinop"

    public static Task<int> MigrateAsync(Database database, CancellationToken cancellationToken) =>
        MigrateAsync(database, long.MaxValue, cancellationToken);

    /// <summary>Applies the migrations up to <paramref name="upToVersion"/> (tests of a migration start from the schema before it).</summary>
    public static async Task<int> MigrateAsync(Database database, long upToVersion, CancellationToken cancellationToken)
    {
        var scripts = LoadScripts(database.Dialect).Where(s => s.Version <= upToVersion).ToList();
        if (database.Dialect == SqlDialect.Sqlite)
        {
            await using var c = await database.OpenAsync(cancellationToken);
            await c.ExecuteAsync(new CommandDefinition("PRAGMA journal_mode=WAL;", cancellationToken: cancellationToken));
        }

        var applied = 0;
        foreach (var (version, name, sql) in scripts)
        {
            var done = await database.WriteAsync(async (connection, transaction) =>
            {
                await EnsureLedgerTableAsync(database.Dialect, connection, transaction, cancellationToken);
                var exists = await connection.ExecuteScalarAsync<long?>(new CommandDefinition(
                    "SELECT version FROM schema_migrations WHERE version = @version",
                    new { version }, transaction, cancellationToken: cancellationToken));
                if (exists is not null)
                {
                    return false;
                }

                await connection.ExecuteAsync(new CommandDefinition(sql, transaction: transaction, cancellationToken: cancellationToken));
                await connection.ExecuteAsync(new CommandDefinition(
                    "INSERT INTO schema_migrations (version, name) VALUES (@version, @name)",
                    new { version, name }, transaction, cancellationToken: cancellationToken));
                return true;
            }, cancellationToken);
            applied += done ? 1 : 0;
        }

        return applied;
    }

    private static async Task EnsureLedgerTableAsync(SqlDialect dialect, DbConnection connection, DbTransaction transaction, CancellationToken cancellationToken)
    {
        if (dialect == SqlDialect.Postgres)
        {
            await connection.ExecuteAsync(new CommandDefinition(
                $"SELECT pg_advisory_xact_lock({PostgresLockKey})", transaction: transaction, cancellationToken: cancellationToken));
        }

        await connection.ExecuteAsync(new CommandDefinition(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL)",
            transaction: transaction, cancellationToken: cancellationToken));
    }

    private static List<(long Version, string Name, string Sql)> LoadScripts(SqlDialect dialect)
    {
        var assembly = typeof(Migrator).Assembly;
        var prefix = $"{assembly.GetName().Name}.Migrations.{dialect}.";
        var scripts = new List<(long, string, string)>();
        foreach (var resource in assembly.GetManifestResourceNames())
        {
            if (!resource.StartsWith(prefix, StringComparison.Ordinal) || !resource.EndsWith(".sql", StringComparison.Ordinal))
            {
                continue;
            }

            var file = resource[prefix.Length..^4].TrimStart('_'); // MSBuild may prefix names that start with a digit
            var underscore = file.IndexOf('_', StringComparison.Ordinal);
            var version = long.Parse(file[..underscore], System.Globalization.CultureInfo.InvariantCulture);
            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var reader = new StreamReader(stream);
            scripts.Add((version, file[(underscore + 1)..], reader.ReadToEnd()));
        }

        scripts.Sort((a, b) => a.Item1.CompareTo(b.Item1));
        return scripts;
    }
}
