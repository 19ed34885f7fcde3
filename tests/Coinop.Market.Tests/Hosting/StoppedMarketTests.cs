using System.Runtime.CompilerServices;
using Coinop.Market.Tests.Payments;
using Coinop.TestKit;

namespace Coinop.Market.Tests.Hosting;

/// <summary>Alone (a full blocking collection pauses every market in the process; on a loaded machine, for seconds).</summary>
[Collection(Name)]
public class StoppedMarketTests
{
    public const string Name = "full collections";

    /// <summary>
    /// This assembly starts hundreds of markets in one process. ASP.NET Core's rate limiter timer kept each stopped
    /// market reachable (container, pipeline, metrics: ~20 MB each), so the test process grew past 9 GB and paused for
    /// seconds in full collections while other tests' markets waited on their deadlines.
    /// </summary>
    [Fact]
    public async Task A_stopped_market_can_be_collected()
    {
        var app = await StartUseAndStopAsync();

        await Eventually.WaitAsync(() =>
        {
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: false);
            GC.WaitForPendingFinalizers();
            return Task.FromResult<bool?>(!app.IsAlive);
        }, gone => gone == true, "the stopped market to be collected", TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static async Task<WeakReference> StartUseAndStopAsync()
    {
        await using var market = await PaidMarket.StartAsync();
        await using var provider = await market.Market.ProviderAsync("llama3", TestContext.Current.CancellationToken);
        await market.TokenAsync(8); // a mint quote: through the client rate limiter's partition for quotes
        return new WeakReference(market.Market.App);
    }
}

[CollectionDefinition(StoppedMarketTests.Name, DisableParallelization = true)]
public sealed class FullCollectionsCollection;
