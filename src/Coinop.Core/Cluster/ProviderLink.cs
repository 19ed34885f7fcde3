namespace Coinop.Core.Cluster;

/// <summary>
/// Which market node holds a provider's WebSocket link, under which fencing epoch. A provider links to one node at a time;
/// when it links again (to any node) the epoch grows, and from then on nothing written under an older epoch counts.
/// </summary>
/// <param name="ClosedAt">When the holding node saw the link end; null while it is up (or its node died holding it).</param>
public sealed record ProviderLink(string ProviderId, string NodeId, long Epoch, DateTimeOffset LinkedAt, DateTimeOffset? ClosedAt)
{
    public bool IsOpen => ClosedAt is null;
}

/// <summary>
/// The rules of provider link ownership as pure functions; the store applies each decision with a compare-and-set on the
/// epoch it read, so they hold across nodes. The guarantees: epochs only grow; each epoch is held by one node, once; a
/// node's writes for a provider count only at the provider's current epoch; only the holder closes its own link.
/// </summary>
public static class LinkRules
{
    /// <summary>
    /// The provider authenticated on <paramref name="nodeId"/>: it takes the link at the next epoch, whoever held it. The
    /// provider decides where it is linked (it dials out), so a newer connection always wins over an older one.
    /// </summary>
    public static ProviderLink Claim(ProviderLink? current, string providerId, string nodeId, DateTimeOffset now)
    {
        if (current is not null && current.ProviderId != providerId)
        {
            throw new ArgumentException("the link row belongs to another provider", nameof(current));
        }

        return new ProviderLink(providerId, nodeId, (current?.Epoch ?? 0) + 1, now, null);
    }

    /// <summary>True when a write made under <paramref name="epoch"/> still counts: no newer link of the provider exists.</summary>
    public static bool IsCurrent(ProviderLink? current, long epoch) => current is not null && epoch >= 1 && current.Epoch == epoch;

    /// <summary>True when <paramref name="nodeId"/> holds the provider's open link at <paramref name="epoch"/>.</summary>
    public static bool Holds(ProviderLink? current, string nodeId, long epoch) =>
        IsCurrent(current, epoch) && current!.IsOpen && current.NodeId == nodeId;

    /// <summary>The holder saw its link end; null (nothing to write) when it no longer holds it.</summary>
    public static ProviderLink? Close(ProviderLink? current, string nodeId, long epoch, DateTimeOffset now) =>
        Holds(current, nodeId, epoch) ? current! with { ClosedAt = now } : null;

    /// <summary>
    /// A link left open by a node that is gone (its heartbeat lapsed or it left): closed on its behalf, at the same epoch, so
    /// the provider shows offline until it links again. Null when there is nothing to close.
    /// </summary>
    public static ProviderLink? CloseForDeadNode(ProviderLink? current, MarketNode? holder, DateTimeOffset now) =>
        current is { IsOpen: true } && (holder is null || holder.NodeId != current.NodeId || !holder.IsLiveAt(now))
            ? current with { ClosedAt = now }
            : null;

    /// <summary>True when jobs may be routed to the provider through this link: open, held by a node that takes work.</summary>
    public static bool IsRoutable(ProviderLink link, MarketNode? holder, DateTimeOffset now) =>
        link.IsOpen && holder is not null && holder.NodeId == link.NodeId && holder.IsRoutableAt(now);
}
