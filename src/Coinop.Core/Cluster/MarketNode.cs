namespace Coinop.Core.Cluster;

/// <summary>Where a market node is in its life, as the node registry records it.</summary>
public enum NodeState
{
    /// <summary>Joined: serves requests, holds provider links, may hold duties.</summary>
    Ready,

    /// <summary>Shutting down: takes no new provider links and hands its duties over.</summary>
    Draining,

    /// <summary>Gone on purpose; its leftovers are taken over at once, without waiting for its heartbeat to lapse.</summary>
    Left,
}

/// <summary>
/// One market node as every node sees it in the shared store: where other nodes reach it (<paramref name="NodeUrl"/>), its
/// run (<paramref name="Incarnation"/>, new at every start) and its heartbeat. A node is alive while it heartbeats within
/// its TTL; nothing else is needed to agree on who is alive, because every node reads the same rows with the same rule.
/// </summary>
public sealed record MarketNode(
    string NodeId,
    string Incarnation,
    string NodeUrl,
    string PublicUrl,
    NodeState State,
    DateTimeOffset StartedAt,
    DateTimeOffset HeartbeatAt,
    DateTimeOffset ExpiresAt)
{
    /// <summary>True while the node counts as part of the market: it has not left and its last heartbeat has not lapsed.</summary>
    public bool IsLiveAt(DateTimeOffset now) => State != NodeState.Left && now < ExpiresAt;

    /// <summary>True when other nodes may route jobs through it.</summary>
    public bool IsRoutableAt(DateTimeOffset now) => State == NodeState.Ready && IsLiveAt(now);
}

/// <summary>How often a node heartbeats and how long a heartbeat counts.</summary>
public sealed record NodeTimings(TimeSpan HeartbeatInterval, TimeSpan Ttl)
{
    /// <summary>Several heartbeats may be lost in a row before the node counts as dead.</summary>
    public const int MinTtlToHeartbeatRatio = 3;

    public static NodeTimings Default { get; } = new(TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(10));

    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (HeartbeatInterval < TimeSpan.FromMilliseconds(10))
        {
            errors.Add("the node heartbeat interval must be at least 10 ms");
        }
        else if (Ttl < HeartbeatInterval * MinTtlToHeartbeatRatio)
        {
            errors.Add($"the node TTL ({Ttl.TotalMilliseconds:0} ms) must be at least {MinTtlToHeartbeatRatio} x the heartbeat interval ({HeartbeatInterval.TotalMilliseconds:0} ms)");
        }

        return errors;
    }

    /// <summary>
    /// Until when a node may act on what it holds after a heartbeat that started at <paramref name="sentAt"/> succeeded:
    /// the stored expiry is at least <c>sentAt + Ttl</c>, and stopping one heartbeat interval earlier leaves room for the
    /// node's own clock being late.
    /// </summary>
    public DateTimeOffset SelfExpiry(DateTimeOffset sentAt) => sentAt + Ttl - HeartbeatInterval;
}
