using Coinop.Core.Cluster;
using Coinop.Core.Text;
using Dapper;

namespace Coinop.Storage.Cluster;

/// <summary>The registry of market nodes sharing this store: each node's row, written only by that node's current run.</summary>
public interface INodeStore
{
    /// <summary>Registers a run of a node: a new incarnation takes over the node id's row (the previous run is gone).</summary>
    Task JoinAsync(MarketNode node, CancellationToken cancellationToken);

    /// <summary>
    /// Moves this run's expiry on (and its state, when given); false when the row belongs to another run of the node id,
    /// or the node has left.
    /// </summary>
    Task<bool> HeartbeatAsync(string nodeId, string incarnation, DateTimeOffset now, DateTimeOffset expiresAt, NodeState? state, CancellationToken cancellationToken);

    Task<IReadOnlyList<MarketNode>> ListAsync(CancellationToken cancellationToken);

    /// <summary>Deletes the rows of nodes whose last heartbeat expired before <paramref name="before"/> and that hold nothing any more.</summary>
    Task<int> PruneAsync(DateTimeOffset before, CancellationToken cancellationToken);
}

public sealed class NodeStore(Database database) : INodeStore
{
    private const string Columns = """
        node_id AS NodeId, incarnation AS Incarnation, node_url AS NodeUrl, public_url AS PublicUrl, state AS State,
        started_at AS StartedAt, heartbeat_at AS HeartbeatAt, expires_at AS ExpiresAt
        """;

    public Task JoinAsync(MarketNode node, CancellationToken cancellationToken) =>
        database.WriteAsync((c, t) => c.ExecuteAsync(new CommandDefinition(
            """
            INSERT INTO market_nodes (node_id, incarnation, node_url, public_url, state, started_at, heartbeat_at, expires_at)
            VALUES (@NodeId, @Incarnation, @NodeUrl, @PublicUrl, @State, @StartedAt, @HeartbeatAt, @ExpiresAt)
            ON CONFLICT (node_id) DO UPDATE SET incarnation = excluded.incarnation, node_url = excluded.node_url, public_url = excluded.public_url,
                state = excluded.state, started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, expires_at = excluded.expires_at
            """,
            new
            {
                node.NodeId,
                node.Incarnation,
                node.NodeUrl,
                node.PublicUrl,
                State = WireEnum.Name(node.State),
                StartedAt = node.StartedAt.ToUnixTimeMilliseconds(),
                HeartbeatAt = node.HeartbeatAt.ToUnixTimeMilliseconds(),
                ExpiresAt = node.ExpiresAt.ToUnixTimeMilliseconds(),
            }, t, cancellationToken: cancellationToken)), cancellationToken);

    public Task<bool> HeartbeatAsync(string nodeId, string incarnation, DateTimeOffset now, DateTimeOffset expiresAt, NodeState? state,
        CancellationToken cancellationToken) =>
        database.WriteAsync(async (c, t) => await c.ExecuteAsync(new CommandDefinition(
            """
            UPDATE market_nodes SET heartbeat_at = @now, expires_at = @expiresAt, state = COALESCE(@state, state)
            WHERE node_id = @nodeId AND incarnation = @incarnation AND state <> 'left'
            """,
            new
            {
                nodeId,
                incarnation,
                now = now.ToUnixTimeMilliseconds(),
                expiresAt = expiresAt.ToUnixTimeMilliseconds(),
                state = state is { } s ? WireEnum.Name(s) : null,
            }, t, cancellationToken: cancellationToken)) == 1, cancellationToken);

    public Task<IReadOnlyList<MarketNode>> ListAsync(CancellationToken cancellationToken) =>
        database.ReadAsync<IReadOnlyList<MarketNode>>(async c =>
        {
            var rows = await c.QueryAsync<NodeRow>(new CommandDefinition(
                $"SELECT {Columns} FROM market_nodes ORDER BY node_id", cancellationToken: cancellationToken));
            return [.. rows.Select(r => r.ToRecord())];
        }, cancellationToken);

    public Task<int> PruneAsync(DateTimeOffset before, CancellationToken cancellationToken) =>
        database.WriteAsync((c, t) => c.ExecuteAsync(new CommandDefinition(
            """
            DELETE FROM market_nodes WHERE expires_at < @before
                AND NOT EXISTS (SELECT 1 FROM provider_links l WHERE l.node_id = market_nodes.node_id AND l.closed_at IS NULL)
                AND NOT EXISTS (SELECT 1 FROM payment_holds h WHERE h.node_id = market_nodes.node_id AND h.state = 'HELD')
                AND NOT EXISTS (SELECT 1 FROM foreign_payments f WHERE f.node_id = market_nodes.node_id AND f.state = 'PENDING')
            """,
            new { before = before.ToUnixTimeMilliseconds() }, t, cancellationToken: cancellationToken)), cancellationToken);

    private sealed class NodeRow
    {
        public string NodeId { get; set; } = "";
        public string Incarnation { get; set; } = "";
        public string NodeUrl { get; set; } = "";
        public string PublicUrl { get; set; } = "";
        public string State { get; set; } = "";
        public long StartedAt { get; set; }
        public long HeartbeatAt { get; set; }
        public long ExpiresAt { get; set; }

        public MarketNode ToRecord() => new(NodeId, Incarnation, NodeUrl, PublicUrl, WireEnum.Parse<NodeState>(State),
            DateTimeOffset.FromUnixTimeMilliseconds(StartedAt), DateTimeOffset.FromUnixTimeMilliseconds(HeartbeatAt),
            DateTimeOffset.FromUnixTimeMilliseconds(ExpiresAt));
    }
}
