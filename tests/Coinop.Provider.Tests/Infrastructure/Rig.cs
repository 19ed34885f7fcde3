using Coinop.Core.Protocol;
using Coinop.Provider.Hosting;
using Coinop.SimBackend.Hosting;
using Coinop.TestKit;

namespace Coinop.Provider.Tests.Infrastructure;

/// <summary>A simulator, a market stand-in and an agent serving the simulator to it, connected and announced.</summary>
public sealed class Rig : IAsyncDisposable
{
    private Rig(SimServer sim, FakeMarket market, TempDirectory dir)
    {
        Sim = sim;
        Market = market;
        Dir = dir;
    }

    public SimServer Sim { get; }

    public FakeMarket Market { get; }

    public TempDirectory Dir { get; }

    public RunningAgent Agent { get; private set; } = null!;

    public MarketConnection Link { get; private set; } = null!;

    public CapabilitiesMessage Capabilities { get; private set; } = null!;

    public static async Task<Rig> StartAsync(
        Action<ProviderOptions>? agent = null,
        Action<FakeMarket>? market = null,
        Action<SimBackendOptions>? sim = null,
        TimeProvider? simTime = null)
    {
        var rig = new Rig(await SimServer.StartAsync(sim, simTime), await FakeMarket.StartAsync(market), new TempDirectory("coinop-provider"));
        rig.Agent = await RunningAgent.StartAsync(rig.Market.Url, rig.Dir.Path, o =>
        {
            o.Backends = [Backend.Parse("openai=" + rig.Sim.Url)];
            agent?.Invoke(o);
        });
        rig.Link = await rig.Market.NextConnectionAsync();
        rig.Capabilities = await rig.Link.NextAsync<CapabilitiesMessage>();
        return rig;
    }

    public async ValueTask DisposeAsync()
    {
        await Agent.DisposeAsync();
        await Market.DisposeAsync();
        await Sim.DisposeAsync();
        Dir.Dispose();
    }
}
