using System.Data.Common;
using Coinop.Core.Cluster;
using Dapper;

namespace Coinop.Storage.Cluster;

/// <summary>What routing needs of a linked provider, as its holding node publishes it.</summary>
/// <param name="Load">The provider's last reported load figures (JSON), for listings.</param>
public sealed record LinkFigures(bool Accepting, int InFlight, double LatencyMs, DateTimeOffset? ParkedUntil, string? Load);

/// <summary>One update a holding node publishes for one of its links; <paramref name="Capabilities"/> only when they changed.</summary>
public sealed record LinkPublication(string ProviderId, long Epoch, LinkFigures Figures, string? Capabilities);

/// <summary>An open link with what its holder last published (capabilities are read separately, when their version moved).</summary>
public sealed record PublishedLink(ProviderLink Link, string Name, long CapabilitiesVersion, LinkFigures Figures, DateTimeOffset UpdatedAt);

/// <summary>
/// Provider link ownership: which node holds each provider's link at which epoch (see <see cref="LinkRules"/>), and the
/// routing figures the holder publishes. Claims and closes read the row, decide with the rules and write with a
/// compare-and-set on the epoch they read; publications are fenced on the holder's node and epoch.
/// </summary>
public interface IProviderLinkStore
{
    /// <summary>The provider authenticated on <paramref name="nodeId"/>: it takes the link at the next epoch, and shows online.</summary>
    Task<ProviderLink> ClaimAsync(string providerId, string nodeId, string name, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>The holder saw its link end: closed, and the provider offline, unless a newer link exists (then nothing changes).</summary>
    Task<bool> CloseAsync(string providerId, string nodeId, long epoch, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>Closes (same epoch) the open links of nodes that are not alive and marks their providers offline; returns them.</summary>
    Task<IReadOnlyList<ProviderLink>> CloseForDeadNodesAsync(IReadOnlyCollection<MarketNode> nodes, DateTimeOffset now, CancellationToken cancellationToken);

    Task<ProviderLink?> FindAsync(string providerId, CancellationToken cancellationToken);

    /// <summary>
    /// A node starting again: the links its previous run left open are marked as taking no jobs (their sockets died with
    /// that run) and returned, so their providers can be presumed alive until they come back.
    /// </summary>
    Task<IReadOnlyList<(string ProviderId, long Epoch)>> TakeBackAsync(string nodeId, CancellationToken cancellationToken);

    Task<IReadOnlyList<PublishedLink>> ListOpenAsync(CancellationToken cancellationToken);

    /// <summary>
    /// The open links held by nodes other than <paramref name="nodeId"/> (what a node routes to through others, and how it
    /// learns that a provider it holds linked again elsewhere). A node's own links are not read: with one node, nothing is.
    /// </summary>
    Task<IReadOnlyList<PublishedLink>> ListOpenElsewhereAsync(string nodeId, CancellationToken cancellationToken);

    /// <summary>
    /// The open links of these providers with their published capabilities (a <c>capabilities</c> protocol message), each
    /// read in one statement with the figures of the same row: a reader never pairs new capabilities with older figures
    /// (the first publication of a link sets both at once).
    /// </summary>
    Task<IReadOnlyList<(PublishedLink Link, string? Capabilities)>> CapabilitiesAsync(IReadOnlyCollection<string> providerIds,
        CancellationToken cancellationToken);

    /// <summary>Writes the holder's figures; an update for a link the node no longer holds changes nothing.</summary>
    Task PublishAsync(string nodeId, IReadOnlyList<LinkPublication> updates, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>
    /// Inside the caller's transaction: true when <paramref name="epoch"/> is still the provider's current link epoch (nobody
    /// took the provider over since). On PostgreSQL the row is locked until the caller commits, so a takeover waits for it.
    /// </summary>
    Task<bool> IsCurrentAsync(DbConnection c, DbTransaction t, string providerId, long epoch, CancellationToken cancellationToken);
}

public sealed class ProviderLinkStore(Database database) : IProviderLinkStore
{
    private const int MaxConflicts = 32;

    private const string LinkColumns = "provider_id AS ProviderId, node_id AS NodeId, epoch AS Epoch, linked_at AS LinkedAt, closed_at AS ClosedAt";

    private const string PublishedColumns = LinkColumns + ", name AS Name, capabilities_version AS CapabilitiesVersion, accepting AS Accepting, "
        + "in_flight AS InFlight, latency_ms AS LatencyMs, parked_until AS ParkedUntil, load_figures AS Load, updated_at AS UpdatedAt";

    public async Task<ProviderLink> ClaimAsync(string providerId, string nodeId, string name, DateTimeOffset now, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            var claimed = await database.WriteAsync(async (c, t) =>
            {
                var current = await ReadAsync(c, t, providerId, cancellationToken);
                var next = LinkRules.Claim(current, providerId, nodeId, now);
                var args = new
                {
                    next.ProviderId,
                    next.NodeId,
                    next.Epoch,
                    LinkedAt = next.LinkedAt.ToUnixTimeMilliseconds(),
                    Name = name,
                    Now = now.ToUnixTimeMilliseconds(),
                    Read = current?.Epoch ?? 0,
                };
                var written = current is null
                    ? await c.ExecuteAsync(new CommandDefinition(
                        """
                        INSERT INTO provider_links (provider_id, node_id, epoch, linked_at, name, updated_at)
                        VALUES (@ProviderId, @NodeId, @Epoch, @LinkedAt, @Name, @Now)
                        ON CONFLICT (provider_id) DO NOTHING
                        """, args, t, cancellationToken: cancellationToken))
                    : await c.ExecuteAsync(new CommandDefinition(
                        """
                        UPDATE provider_links SET node_id = @NodeId, epoch = @Epoch, linked_at = @LinkedAt, closed_at = NULL, name = @Name,
                            capabilities = NULL, capabilities_version = capabilities_version + 1, accepting = 0, in_flight = 0, latency_ms = 0,
                            parked_until = NULL, load_figures = NULL, updated_at = @Now
                        WHERE provider_id = @ProviderId AND epoch = @Read
                        """, args, t, cancellationToken: cancellationToken));
                if (written == 0)
                {
                    return null;
                }

                await c.ExecuteAsync(new CommandDefinition(
                    "UPDATE providers SET online = 1, last_seen_at = @Now WHERE id = @ProviderId", args, t, cancellationToken: cancellationToken));
                return next;
            }, cancellationToken);
            if (claimed is not null)
            {
                return claimed;
            }

            if (attempt >= MaxConflicts)
            {
                throw new InvalidOperationException($"could not claim the link of provider {providerId}: it kept changing");
            }
        }
    }

    public Task<bool> CloseAsync(string providerId, string nodeId, long epoch, DateTimeOffset now, CancellationToken cancellationToken) =>
        database.WriteAsync(async (c, t) =>
        {
            var closed = LinkRules.Close(await ReadAsync(c, t, providerId, cancellationToken), nodeId, epoch, now);
            return closed is not null && await CloseAsync(c, t, closed, cancellationToken);
        }, cancellationToken);

    public Task<IReadOnlyList<ProviderLink>> CloseForDeadNodesAsync(IReadOnlyCollection<MarketNode> nodes, DateTimeOffset now, CancellationToken cancellationToken) =>
        database.WriteAsync<IReadOnlyList<ProviderLink>>(async (c, t) =>
        {
            var byId = nodes.ToDictionary(n => n.NodeId, StringComparer.Ordinal);
            // Only links of nodes not live now are read (the rule below decides): every link of a live node, 10,000 on one
            // node, read every pass cost more than everything else an idle node does.
            var live = nodes.Where(n => n.IsLiveAt(now)).Select(n => n.NodeId).ToArray();
            var filter = live.Length == 0 ? "" : database.Dialect == SqlDialect.Postgres ? " AND node_id <> ALL(@live)" : " AND node_id NOT IN @live";
            var open = await c.QueryAsync<LinkRow>(new CommandDefinition(
                $"SELECT {LinkColumns} FROM provider_links WHERE closed_at IS NULL{filter}", new { live }, t, cancellationToken: cancellationToken));
            var closed = new List<ProviderLink>();
            foreach (var row in open)
            {
                var link = row.ToLink();
                if (LinkRules.CloseForDeadNode(link, byId.GetValueOrDefault(link.NodeId), now) is { } close && await CloseAsync(c, t, close, cancellationToken))
                {
                    closed.Add(close);
                }
            }

            return closed;
        }, cancellationToken);

    public Task<ProviderLink?> FindAsync(string providerId, CancellationToken cancellationToken) =>
        database.ReadAsync(async c => (await c.QuerySingleOrDefaultAsync<LinkRow>(new CommandDefinition(
            $"SELECT {LinkColumns} FROM provider_links WHERE provider_id = @providerId", new { providerId }, cancellationToken: cancellationToken)))?.ToLink(),
            cancellationToken);

    public Task<IReadOnlyList<(string ProviderId, long Epoch)>> TakeBackAsync(string nodeId, CancellationToken cancellationToken) =>
        database.WriteAsync<IReadOnlyList<(string, long)>>(async (c, t) =>
        {
            var rows = await c.QueryAsync<LinkRow>(new CommandDefinition(
                $"SELECT {LinkColumns} FROM provider_links WHERE node_id = @nodeId AND closed_at IS NULL", new { nodeId }, t, cancellationToken: cancellationToken));
            await c.ExecuteAsync(new CommandDefinition(
                "UPDATE provider_links SET accepting = 0, in_flight = 0 WHERE node_id = @nodeId AND closed_at IS NULL", new { nodeId }, t, cancellationToken: cancellationToken));
            return [.. rows.Select(r => (r.ProviderId, r.Epoch))];
        }, cancellationToken);

    public Task<IReadOnlyList<PublishedLink>> ListOpenElsewhereAsync(string nodeId, CancellationToken cancellationToken) =>
        database.ReadAsync<IReadOnlyList<PublishedLink>>(async c =>
        {
            var rows = await c.QueryAsync<LinkRow>(new CommandDefinition(
                $"SELECT {PublishedColumns} FROM provider_links WHERE closed_at IS NULL AND node_id <> @nodeId", new { nodeId }, cancellationToken: cancellationToken));
            return [.. rows.Select(r => r.ToPublished())];
        }, cancellationToken);

    public Task<IReadOnlyList<PublishedLink>> ListOpenAsync(CancellationToken cancellationToken) =>
        database.ReadAsync<IReadOnlyList<PublishedLink>>(async c =>
        {
            var rows = await c.QueryAsync<LinkRow>(new CommandDefinition(
                $"SELECT {PublishedColumns} FROM provider_links WHERE closed_at IS NULL", cancellationToken: cancellationToken));
            return [.. rows.Select(r => r.ToPublished())];
        }, cancellationToken);

    public Task<IReadOnlyList<(PublishedLink Link, string? Capabilities)>> CapabilitiesAsync(IReadOnlyCollection<string> providerIds,
        CancellationToken cancellationToken) =>
        database.ReadAsync<IReadOnlyList<(PublishedLink, string?)>>(async c =>
        {
            var result = new List<(PublishedLink, string?)>(providerIds.Count);
            foreach (var chunk in providerIds.Chunk(200))
            {
                var filter = database.Dialect == SqlDialect.Postgres ? "= ANY(@ids)" : "IN @ids"; // PostgreSQL takes the array as one parameter
                var rows = await c.QueryAsync<LinkRow>(new CommandDefinition(
                    $"""
                    SELECT {PublishedColumns}, capabilities AS Capabilities
                    FROM provider_links WHERE provider_id {filter} AND closed_at IS NULL
                    """,
                    new { ids = chunk }, cancellationToken: cancellationToken));
                result.AddRange(rows.Select(r => (r.ToPublished(), r.Capabilities)));
            }

            return result;
        }, cancellationToken);

    public Task PublishAsync(string nodeId, IReadOnlyList<LinkPublication> updates, DateTimeOffset now, CancellationToken cancellationToken) =>
        updates.Count == 0
            ? Task.CompletedTask
            : database.WriteAsync((c, t) => c.ExecuteAsync(new CommandDefinition(
                """
                UPDATE provider_links SET accepting = @Accepting, in_flight = @InFlight, latency_ms = @LatencyMs, parked_until = @ParkedUntil,
                    load_figures = @Load, updated_at = @Now,
                    capabilities = CASE WHEN @HasCapabilities = 1 THEN @Capabilities ELSE capabilities END,
                    capabilities_version = CASE WHEN @HasCapabilities = 1 THEN capabilities_version + 1 ELSE capabilities_version END
                WHERE provider_id = @ProviderId AND epoch = @Epoch AND node_id = @NodeId AND closed_at IS NULL
                """,
                updates.Select(u => new
                {
                    u.ProviderId,
                    u.Epoch,
                    NodeId = nodeId,
                    Accepting = u.Figures.Accepting ? 1 : 0,
                    u.Figures.InFlight,
                    u.Figures.LatencyMs,
                    ParkedUntil = u.Figures.ParkedUntil?.ToUnixTimeMilliseconds(),
                    u.Figures.Load,
                    Now = now.ToUnixTimeMilliseconds(),
                    HasCapabilities = u.Capabilities is null ? 0 : 1,
                    Capabilities = u.Capabilities ?? "",
                }), t, cancellationToken: cancellationToken)), cancellationToken);

    public async Task<bool> IsCurrentAsync(DbConnection c, DbTransaction t, string providerId, long epoch, CancellationToken cancellationToken)
    {
        var sql = database.Dialect == SqlDialect.Postgres
            ? $"SELECT {LinkColumns} FROM provider_links WHERE provider_id = @providerId FOR SHARE"
            : $"SELECT {LinkColumns} FROM provider_links WHERE provider_id = @providerId";
        // On every paid request's settle: a statement kept prepared (see Database.Statement), read by hand.
        using var select = database.Statement(c, t, sql);
        await using var reader = await select.Set("@providerId", providerId).ReaderAsync(cancellationToken);
        var link = await reader.ReadAsync(cancellationToken)
            ? new LinkRow
            {
                ProviderId = reader.GetString(0),
                NodeId = reader.GetString(1),
                Epoch = reader.GetInt64(2),
                LinkedAt = reader.GetInt64(3),
                ClosedAt = reader.IsDBNull(4) ? null : reader.GetInt64(4),
            }.ToLink()
            : null;
        return LinkRules.IsCurrent(link, epoch);
    }

    private static async Task<ProviderLink?> ReadAsync(DbConnection c, DbTransaction t, string providerId, CancellationToken cancellationToken) =>
        (await c.QuerySingleOrDefaultAsync<LinkRow>(new CommandDefinition(
            $"SELECT {LinkColumns} FROM provider_links WHERE provider_id = @providerId", new { providerId }, t, cancellationToken: cancellationToken)))?.ToLink();

    /// <summary>Closes the link at the epoch it was read with; the provider goes offline only if that epoch was still current.</summary>
    private static async Task<bool> CloseAsync(DbConnection c, DbTransaction t, ProviderLink closed, CancellationToken cancellationToken)
    {
        var args = new { closed.ProviderId, closed.Epoch, ClosedAt = closed.ClosedAt!.Value.ToUnixTimeMilliseconds() };
        if (await c.ExecuteAsync(new CommandDefinition(
            "UPDATE provider_links SET closed_at = @ClosedAt, accepting = 0, in_flight = 0, updated_at = @ClosedAt WHERE provider_id = @ProviderId AND epoch = @Epoch AND closed_at IS NULL",
            args, t, cancellationToken: cancellationToken)) == 0)
        {
            return false;
        }

        await c.ExecuteAsync(new CommandDefinition(
            "UPDATE providers SET online = 0, last_seen_at = @ClosedAt WHERE id = @ProviderId", args, t, cancellationToken: cancellationToken));
        return true;
    }

    private sealed class LinkRow
    {
        public string ProviderId { get; set; } = "";
        public string NodeId { get; set; } = "";
        public long Epoch { get; set; }
        public long LinkedAt { get; set; }
        public long? ClosedAt { get; set; }
        public string Name { get; set; } = "";
        public long CapabilitiesVersion { get; set; }
        public long Accepting { get; set; }
        public long InFlight { get; set; }
        public double LatencyMs { get; set; }
        public long? ParkedUntil { get; set; }
        public string? Load { get; set; }
        public long UpdatedAt { get; set; }

        public string? Capabilities { get; set; }

        public PublishedLink ToPublished() => new(ToLink(), Name, CapabilitiesVersion,
            new LinkFigures(Accepting != 0, (int)InFlight, LatencyMs, ParkedUntil is { } p ? DateTimeOffset.FromUnixTimeMilliseconds(p) : null, Load),
            DateTimeOffset.FromUnixTimeMilliseconds(UpdatedAt));

        public ProviderLink ToLink() => new(ProviderId, NodeId, Epoch, DateTimeOffset.FromUnixTimeMilliseconds(LinkedAt),
            ClosedAt is { } closed ? DateTimeOffset.FromUnixTimeMilliseconds(closed) : null);
    }
}
