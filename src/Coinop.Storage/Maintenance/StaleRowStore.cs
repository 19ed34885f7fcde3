using Dapper;

namespace Coinop.Storage.Maintenance;

/// <summary>How many rows one prune removed, per kind.</summary>
public sealed record PrunedRows(int MintQuotes, int ProviderNonces, int Providers)
{
    public int Total => MintQuotes + ProviderNonces + Providers;
}

/// <summary>
/// Deletes rows anyone can create without paying or authenticating, once they can no longer matter: mint quotes
/// never paid and past their expiry, nonces of read-only signed provider requests (long outside the signing window,
/// so a replay is refused by its timestamp anyway), and providers that joined an open market, went away and never
/// earned (no ledger account). Payouts' nonces, paid quotes and providers with money are never touched.
/// </summary>
public sealed class StaleRowStore(Database database)
{
    public Task<PrunedRows> PruneAsync(DateTimeOffset rowsBefore, DateTimeOffset? providersBefore, CancellationToken cancellationToken) =>
        database.WriteAsync(async (c, t) =>
        {
            var before = rowsBefore.ToUnixTimeMilliseconds();
            var quotes = await c.ExecuteAsync(new CommandDefinition(
                "DELETE FROM mint_quotes WHERE state = 'UNPAID' AND expires_at < @before", new { before }, t, cancellationToken: cancellationToken));
            var nonces = await c.ExecuteAsync(new CommandDefinition(
                "DELETE FROM provider_requests WHERE result IS NULL AND received_at < @before", new { before }, t, cancellationToken: cancellationToken));
            var providers = 0;
            if (providersBefore is { } seen)
            {
                providers = await c.ExecuteAsync(new CommandDefinition(
                    """
                    DELETE FROM providers WHERE online = 0 AND last_seen_at < @seenBefore
                      AND NOT EXISTS (SELECT 1 FROM ledger_accounts a WHERE a.account = 'provider:' || providers.id)
                    """, new { seenBefore = seen.ToUnixTimeMilliseconds() }, t, cancellationToken: cancellationToken));
            }

            return new PrunedRows(quotes, nonces, providers);
        }, cancellationToken);
}
