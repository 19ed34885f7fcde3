using Coinop.Market.Cluster;
using Coinop.Market.Gateway;
using Coinop.Market.Tests.TestProviders;
using Microsoft.Extensions.DependencyInjection;

namespace Coinop.Market.Tests.Gateway;

public class NodesAnnouncementTests
{
    [Fact]
    public async Task A_change_of_the_market_nodes_never_reaches_a_provider_before_its_auth_ok()
    {
        var ct = TestContext.Current.CancellationToken;
        var links = new AnnouncingLinks();
        await using var market = await MarketUnderTest.StartAsync(builder: b =>
        {
            b.Services.AddSingleton<ProviderLinks>();
            b.Services.AddSingleton<IProviderLinks>(sp => links.Over(sp.GetRequiredService<ProviderLinks>()));
        }, cancellationToken: ct);

        // The node list keeps changing while providers authenticate: an announcement sent between a session's
        // registration and its auth_ok would be the provider's handshake answer (TestProvider throws on it).
        using var announcing = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var announcer = Task.Factory.StartNew(() => links.AnnounceUntil(announcing.Token), TaskCreationOptions.LongRunning);
        try
        {
            for (var i = 0; i < 30; i++)
            {
                await using var provider = await TestProvider.ConnectAsync(market.Url, cancellationToken: ct);
                Assert.NotNull(provider.AuthOk);
            }
        }
        finally
        {
            await announcing.CancelAsync();
            await announcer;
        }

        Assert.True(links.Announcements > 0);
    }

    /// <summary>The real links, with a node list that changes as fast as the test asks.</summary>
    private sealed class AnnouncingLinks : IProviderLinks
    {
        private IProviderLinks _inner = null!;
        private long _announcements;

        public event Action<IReadOnlyList<string>>? NodeUrlsChanged;

        public long Announcements => Interlocked.Read(ref _announcements);

        public IReadOnlyList<string> NodeUrls => _inner.NodeUrls;

        public AnnouncingLinks Over(IProviderLinks inner)
        {
            _inner = inner;
            return this;
        }

        public void AnnounceUntil(CancellationToken stop)
        {
            while (!stop.IsCancellationRequested)
            {
                if (_inner is not null)
                {
                    NodeUrlsChanged?.Invoke(_inner.NodeUrls);
                    Interlocked.Increment(ref _announcements);
                }
            }
        }

        public Task<long> LinkAsync(string providerId, string name, CancellationToken cancellationToken) => _inner.LinkAsync(providerId, name, cancellationToken);

        public Task UnlinkAsync(string providerId, long epoch, CancellationToken cancellationToken) => _inner.UnlinkAsync(providerId, epoch, cancellationToken);

        public Task<IReadOnlyList<(string ProviderId, long Epoch)>> LeftOverAsync(CancellationToken cancellationToken) => _inner.LeftOverAsync(cancellationToken);
    }
}
