namespace Coinop.Market.Gateway;

/// <summary>
/// The record of which market node holds each provider's link (the store's <c>provider_links</c>), as the gateway needs it:
/// a provider that authenticated here takes its link at a new epoch (a session elsewhere is replaced), a link that ended
/// is recorded closed unless the provider linked again since, and providers learn the nodes they may link to.
/// </summary>
public interface IProviderLinks
{
    /// <summary>Records that this node holds the provider's link now; returns the link's new fencing epoch.</summary>
    Task<long> LinkAsync(string providerId, string name, CancellationToken cancellationToken);

    /// <summary>The link of <paramref name="epoch"/> ended: closed (provider offline) unless a newer link exists.</summary>
    Task UnlinkAsync(string providerId, long epoch, CancellationToken cancellationToken);

    /// <summary>Links this node's previous run held when it ended (their providers are presumed alive for the failover TTL).</summary>
    Task<IReadOnlyList<(string ProviderId, long Epoch)>> LeftOverAsync(CancellationToken cancellationToken);

    /// <summary>The URLs of the market's nodes that take providers (sent to providers so they can move on when a node goes).</summary>
    IReadOnlyList<string> NodeUrls { get; }

    /// <summary>Raised when <see cref="NodeUrls"/> changed.</summary>
    event Action<IReadOnlyList<string>>? NodeUrlsChanged;
}
