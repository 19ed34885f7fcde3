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
        // The first capabilities come after the first discovery pass; on a loaded machine that pass can miss the
        // probe timeout and offer nothing (the next pass corrects it). Tests send jobs for the simulator's models.
        rig.Capabilities = await rig.Link.NextAsync<CapabilitiesMessage>(c => c.Models.Count > 0);
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
