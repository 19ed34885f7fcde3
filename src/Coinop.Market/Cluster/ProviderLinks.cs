using Coinop.Market.Gateway;
using Coinop.Storage.Cluster;

namespace Coinop.Market.Cluster;

/// <summary>The gateway's view of link ownership (<see cref="IProviderLinks"/>) over the store and the cluster view.</summary>
public sealed class ProviderLinks(IProviderLinkStore store, NodeRegistry registry, ClusterView view, TimeProvider time) : IProviderLinks
{
    public IReadOnlyList<string> NodeUrls => view.NodeUrls.Count > 0 ? view.NodeUrls : [registry.NodeUrl];

    public event Action<IReadOnlyList<string>>? NodeUrlsChanged
    {
        add => view.NodeUrlsChanged += value;
        remove => view.NodeUrlsChanged -= value;
    }

    public async Task<long> LinkAsync(string providerId, string name, CancellationToken cancellationToken) =>
        (await store.ClaimAsync(providerId, registry.NodeId, name, time.GetUtcNow(), cancellationToken)).Epoch;

    public Task UnlinkAsync(string providerId, long epoch, CancellationToken cancellationToken) =>
        store.CloseAsync(providerId, registry.NodeId, epoch, time.GetUtcNow(), cancellationToken);

    public Task<IReadOnlyList<(string ProviderId, long Epoch)>> LeftOverAsync(CancellationToken cancellationToken) =>
        store.TakeBackAsync(registry.NodeId, cancellationToken);
}
