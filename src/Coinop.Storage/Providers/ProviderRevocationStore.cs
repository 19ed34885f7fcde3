using Dapper;

namespace Coinop.Storage.Providers;

/// <summary>A provider the operator revoked, and why.</summary>
public sealed record ProviderRevocation(string ProviderId, DateTimeOffset RevokedAt, string Reason);

/// <summary>Revoked providers: the market refuses their handshakes (every node, since the list lives in the store).</summary>
public interface IProviderRevocationStore
{
    /// <summary>Revokes the provider; false when it was already revoked (the first revocation is kept).</summary>
    Task<bool> RevokeAsync(ProviderRevocation revocation, CancellationToken cancellationToken);

    Task<ProviderRevocation?> FindAsync(string providerId, CancellationToken cancellationToken);

    Task<IReadOnlyList<ProviderRevocation>> ListAsync(CancellationToken cancellationToken);
}

public sealed class ProviderRevocationStore(Database database) : IProviderRevocationStore
{
    private const string Columns = "provider_id AS ProviderId, revoked_at AS RevokedAt, reason AS Reason";

    public Task<bool> RevokeAsync(ProviderRevocation revocation, CancellationToken cancellationToken) =>
        database.WriteAsync(async (c, t) => await c.ExecuteAsync(new CommandDefinition(
            "INSERT INTO provider_revocations (provider_id, revoked_at, reason) VALUES (@ProviderId, @At, @Reason) ON CONFLICT (provider_id) DO NOTHING",
            new { revocation.ProviderId, At = revocation.RevokedAt.ToUnixTimeMilliseconds(), revocation.Reason }, t, cancellationToken: cancellationToken)) == 1,
            cancellationToken);

    public Task<ProviderRevocation?> FindAsync(string providerId, CancellationToken cancellationToken) =>
        database.ReadAsync(async c => (await c.QuerySingleOrDefaultAsync<Row>(new CommandDefinition(
            $"SELECT {Columns} FROM provider_revocations WHERE provider_id = @providerId", new { providerId }, cancellationToken: cancellationToken)))?.ToRecord(),
            cancellationToken);

    public Task<IReadOnlyList<ProviderRevocation>> ListAsync(CancellationToken cancellationToken) =>
        database.ReadAsync<IReadOnlyList<ProviderRevocation>>(async c => [.. (await c.QueryAsync<Row>(new CommandDefinition(
            $"SELECT {Columns} FROM provider_revocations ORDER BY revoked_at", cancellationToken: cancellationToken))).Select(r => r.ToRecord())],
            cancellationToken);

    private sealed class Row
    {
        public string ProviderId { get; set; } = "";
        public long RevokedAt { get; set; }
        public string Reason { get; set; } = "";

        public ProviderRevocation ToRecord() => new(ProviderId, DateTimeOffset.FromUnixTimeMilliseconds(RevokedAt), Reason);
    }
}
