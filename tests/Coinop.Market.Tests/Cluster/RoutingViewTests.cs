using System.Data.Common;
using System.Net;
using Coinop.Core.Cluster;
using Coinop.Market.Cluster;
using Coinop.Market.Tests.Inference;
using Coinop.Storage;
using Coinop.Storage.Cluster;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;

namespace Coinop.Market.Tests.Cluster;

/// <summary>
/// What a node that does not hold a provider's link knows of it: every provider it lists (<c>/v1/models</c>,
/// <c>/api/providers</c>) it routes to, and a request never gets a 404 for a provider that was online before it came.
/// The interleavings are forced through the real store, wrapped (<see cref="SteeredLinkStore"/>).
/// </summary>
public class RoutingViewTests
{
    private const string Chat = """{"model":"llama3","messages":[{"role":"user","content":"x"}]}""";

    /// <summary>No background refresh or publication: the test decides when each happens.</summary>
    private static void Manual(ClusterOptions o)
    {
        o.ViewRefreshInterval = TimeSpan.FromHours(1);
        o.PublishInterval = TimeSpan.FromHours(1);
    }

    [Fact]
    public async Task A_provider_whose_first_publication_lands_between_the_two_reads_of_a_refresh_is_routed_where_it_is_listed()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var nodes = await TestNodes.StartAsync(1, cluster: Manual);
        SteeredLinkStore? steered = null;
        await nodes.AddAsync(cluster: Manual, services: s => s.AddSingleton<IProviderLinkStore>(sp =>
            steered = new SteeredLinkStore(new ProviderLinkStore(sp.GetRequiredService<Database>()))));
        await using var provider = await nodes[0].ProviderAsync("llama3", ct);

        // Node 2 lists the open links while node 1 has not published yet (the link claimed, not accepting, no offers),
        // then reads the capabilities just after node 1's first publication: the moment CI hit by chance.
        steered!.AfterListing = () => TestNodes.Get<LinkPublisher>(nodes[0]).PublishAsync(ct);
        await TestNodes.Get<ClusterView>(nodes[1]).RefreshAsync(ct);
        steered.AfterListing = null;

        var models = await nodes[1].Http.GetStringAsync("/v1/models", ct);
        Assert.Contains("\"llama3\"", models, StringComparison.Ordinal);
        using var response = await nodes[1].Http.PostAsync("/v1/chat/completions", OpenAiApiTests.Json(Chat), ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync(ct)}");
        Assert.Empty(nodes[1].Directory.Snapshot); // forwarded to node 1
    }

    [Fact]
    public async Task A_request_that_arrives_while_the_view_is_a_read_behind_is_routed_once_it_caught_up_not_refused()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var nodes = await TestNodes.StartAsync(1);
        SteeredLinkStore? steered = null;
        var arrived = 0;
        await nodes.AddAsync(services: s =>
        {
            s.AddSingleton<IProviderLinkStore>(sp => steered = new SteeredLinkStore(new ProviderLinkStore(sp.GetRequiredService<Database>())));
            s.AddSingleton<IStartupFilter>(new OnArrival(() => Interlocked.Exchange(ref arrived, 1)));
        });

        // Every read node 2 starts before the request arrives misses the provider: its view is always a read behind.
        steered!.Hidden = () => Volatile.Read(ref arrived) == 0;
        await using var provider = await nodes[0].ProviderAsync("llama3", ct);
        await nodes.WaitRoutableAsync(0, provider.ProviderId);
        Assert.DoesNotContain("\"llama3\"", await nodes[1].Http.GetStringAsync("/v1/models", ct), StringComparison.Ordinal);

        using var response = await nodes[1].Http.PostAsync("/v1/chat/completions", OpenAiApiTests.Json(Chat), ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync(ct)}");

        // A model nobody offers is still a 404 (after one more read).
        using var unknown = await nodes[1].Http.PostAsync("/v1/chat/completions", OpenAiApiTests.Json(Chat.Replace("llama3", "nobody-offers", StringComparison.Ordinal)), ct);
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
    }

    /// <summary>Calls <paramref name="arrived"/> when an inference request reaches the node, before anything looks at it.</summary>
    private sealed class OnArrival(Action arrived) : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use((http, inner) =>
            {
                if (http.Request.Path.StartsWithSegments("/v1/chat", StringComparison.Ordinal))
                {
                    arrived();
                }

                return inner(http);
            });
            next(app);
        };
    }

    /// <summary>The real link store, with a hook after listing the open links and a filter that hides every link from reads.</summary>
    private sealed class SteeredLinkStore(IProviderLinkStore inner) : IProviderLinkStore
    {
        public Func<Task>? AfterListing { get; set; }

        public Func<bool>? Hidden { get; set; }

        public Task<IReadOnlyList<PublishedLink>> ListOpenAsync(CancellationToken cancellationToken) => inner.ListOpenAsync(cancellationToken);

        public async Task<IReadOnlyList<PublishedLink>> ListOpenElsewhereAsync(string nodeId, CancellationToken cancellationToken)
        {
            var hide = Hidden?.Invoke() == true; // decided when the read starts
            var listed = await inner.ListOpenElsewhereAsync(nodeId, cancellationToken);
            if (AfterListing is { } after)
            {
                await after();
            }

            return hide ? [] : listed;
        }

        public async Task<IReadOnlyList<(PublishedLink Link, string? Capabilities)>> CapabilitiesAsync(IReadOnlyCollection<string> providerIds,
            CancellationToken cancellationToken) => await inner.CapabilitiesAsync(providerIds, cancellationToken);

        public Task<ProviderLink> ClaimAsync(string providerId, string nodeId, string name, DateTimeOffset now, CancellationToken cancellationToken) =>
            inner.ClaimAsync(providerId, nodeId, name, now, cancellationToken);

        public Task<bool> CloseAsync(string providerId, string nodeId, long epoch, DateTimeOffset now, CancellationToken cancellationToken) =>
            inner.CloseAsync(providerId, nodeId, epoch, now, cancellationToken);

        public Task<IReadOnlyList<ProviderLink>> CloseForDeadNodesAsync(IReadOnlyCollection<MarketNode> nodes, DateTimeOffset now,
            CancellationToken cancellationToken) => inner.CloseForDeadNodesAsync(nodes, now, cancellationToken);

        public Task<ProviderLink?> FindAsync(string providerId, CancellationToken cancellationToken) => inner.FindAsync(providerId, cancellationToken);

        public Task<IReadOnlyList<(string ProviderId, long Epoch)>> TakeBackAsync(string nodeId, CancellationToken cancellationToken) =>
            inner.TakeBackAsync(nodeId, cancellationToken);

        public Task PublishAsync(string nodeId, IReadOnlyList<LinkPublication> updates, DateTimeOffset now, CancellationToken cancellationToken) =>
            inner.PublishAsync(nodeId, updates, now, cancellationToken);

        public Task<bool> IsCurrentAsync(DbConnection c, DbTransaction t, string providerId, long epoch, CancellationToken cancellationToken) =>
            inner.IsCurrentAsync(c, t, providerId, epoch, cancellationToken);
    }
}
