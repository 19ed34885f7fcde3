using Coinop.Core.Protocol;
using Coinop.Market.Cluster;
using Coinop.Market.Gateway;
using Coinop.Market.Tests.TestProviders;
using Coinop.Storage.Cluster;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Coinop.Market.Tests.Cluster;

/// <summary>
/// The publisher looks only at sessions that signalled a change: an idle provider is neither read nor written, and every
/// figure other nodes route by (load, accepting, jobs in flight, parking) still reaches the store on the next pass.
/// </summary>
public class LinkPublisherTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Idle_heartbeats_write_nothing_and_every_change_is_published_on_the_next_pass()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var market = await MarketUnderTest.StartAsync(builder: b => b.Services.AddSingleton<TimeProvider>(time), cancellationToken: Ct);
        await using var provider = await market.ProviderAsync("llama3", Ct);
        var publisher = market.App.Services.GetRequiredService<LinkPublisher>();
        var session = market.Directory.Find(provider.ProviderId)!;

        await publisher.PublishAsync(Ct);
        var first = await RowAsync(market, provider.ProviderId);
        Assert.True(first.Figures.Accepting);

        // Idle: the same load every heartbeat. Nothing is queued for the publisher and the row is not rewritten.
        time.Advance(TimeSpan.FromSeconds(5));
        await provider.HeartbeatAsync(Ct);
        await publisher.PublishAsync(Ct);
        var changed = new List<ProviderSession>();
        market.Directory.TakeChanged(changed);
        Assert.Empty(changed);
        Assert.Equal(first.UpdatedAt, (await RowAsync(market, provider.ProviderId)).UpdatedAt);

        // A new load: published (and a second pass finds nothing more to do).
        time.Advance(TimeSpan.FromSeconds(1));
        var ack = provider.WaitForAsync<HeartbeatAck>(_ => true, afterNow: true);
        await provider.SendAsync(new HeartbeatMessage(new LoadFigures(3, 2, 40, 90, 55, 0)), Ct);
        await ack.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        await publisher.PublishAsync(Ct);
        var loaded = await RowAsync(market, provider.ProviderId);
        Assert.True(loaded.UpdatedAt > first.UpdatedAt);
        Assert.Contains("55", loaded.Figures.Load, StringComparison.Ordinal);

        // Jobs in flight and parking, changed by routing rather than by the provider.
        Assert.True(session.TryAcquireSlot());
        await publisher.PublishAsync(Ct);
        Assert.Equal(1, (await RowAsync(market, provider.ProviderId)).Figures.InFlight);
        session.ReleaseSlot();
        await publisher.PublishAsync(Ct);
        Assert.Equal(0, (await RowAsync(market, provider.ProviderId)).Figures.InFlight);
        session.ParkUntil(time.GetUtcNow().AddMinutes(1));
        await publisher.PublishAsync(Ct);
        Assert.NotNull((await RowAsync(market, provider.ProviderId)).Figures.ParkedUntil);

        // Draining: no longer accepting, for every node.
        await provider.SendAsync(new DrainNotice(60_000), Ct);
        await provider.HeartbeatAsync(Ct); // the socket is read in order: once this is answered, the notice was taken
        Assert.True(session.Draining);
        await publisher.PublishAsync(Ct);
        Assert.False((await RowAsync(market, provider.ProviderId)).Figures.Accepting);
    }

    private static async Task<PublishedLink> RowAsync(MarketUnderTest market, string providerId) =>
        (await market.App.Services.GetRequiredService<IProviderLinkStore>().ListOpenAsync(Ct)).Single(l => l.Link.ProviderId == providerId);
}
