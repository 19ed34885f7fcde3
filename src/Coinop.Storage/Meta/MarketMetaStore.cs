using Dapper;

namespace Coinop.Storage.Meta;

/// <summary>Market-wide key/value settings shared by all nodes of one market.</summary>
public interface IMarketMetaStore
{
    Task<string?> GetAsync(string key, CancellationToken cancellationToken);

    /// <summary>Stores <paramref name="value"/> unless the key is already set; returns the value that won.</summary>
    Task<string> GetOrAddAsync(string key, string value, CancellationToken cancellationToken);

    Task SetAsync(string key, string value, CancellationToken cancellationToken);
}

public sealed class MarketMetaStore(Database database) : IMarketMetaStore
{
    public Task<string?> GetAsync(string key, CancellationToken cancellationToken) =>
        database.ReadAsync(c => c.ExecuteScalarAsync<string?>(new CommandDefinition(
            "SELECT value FROM market_meta WHERE key = @key", new { key }, cancellationToken: cancellationToken)), cancellationToken);

    public Task<string> GetOrAddAsync(string key, string value, CancellationToken cancellationToken) =>
        database.WriteAsync(async (c, t) =>
        {
            await c.ExecuteAsync(new CommandDefinition(
                "INSERT INTO market_meta (key, value) VALUES (@key, @value) ON CONFLICT (key) DO NOTHING",
                new { key, value }, t, cancellationToken: cancellationToken));
            return await c.ExecuteScalarAsync<string>(new CommandDefinition(
                "SELECT value FROM market_meta WHERE key = @key", new { key }, t, cancellationToken: cancellationToken)) ?? value;
        }, cancellationToken);

    public Task SetAsync(string key, string value, CancellationToken cancellationToken) =>
        database.WriteAsync((c, t) => c.ExecuteAsync(new CommandDefinition(
            "INSERT INTO market_meta (key, value) VALUES (@key, @value) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            new { key, value }, t, cancellationToken: cancellationToken)), cancellationToken);
}
