using System.Text.Json;
using Coinop.Core.Pricing;
using Coinop.Market.Hosting;
using Coinop.Market.Tests.TestProviders;
using Coinop.Provider.Backends;
using Coinop.Provider.Hosting;
using Coinop.SimBackend.Hosting;
using Coinop.TestKit;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Coinop.Market.Tests.Translation;

/// <summary>
/// The whole path a consumer's request takes, all real and on loopback: a market node, a provider agent, and the
/// simulator as its Ollama-style backend (OpenAI chat only, with scripted tool calls and reasoning), which keeps the
/// requests it received so a test can see what the backend got. <c>sim-small</c> is text-only, <c>sim-vision</c> takes images.
/// </summary>
public sealed class ChatStack : IAsyncDisposable
{
    public const string TextModel = "sim-small";
    public const string VisionModel = "sim-vision";
    private readonly TempDirectory _providerDir;

    private ChatStack(MarketUnderTest market, WebApplication sim, IHost agent, TempDirectory providerDir)
    {
        Market = market;
        Sim = sim;
        Agent = agent;
        _providerDir = providerDir;
    }

    public MarketUnderTest Market { get; }

    public WebApplication Sim { get; }

    public IHost Agent { get; }

    public Simulator Simulator => Sim.Simulator();

    public string Url => Market.Url;

    public HttpClient Http => Market.Http;

    public static async Task<ChatStack> StartAsync(Action<MarketOptions>? configure = null, Action<WebApplicationBuilder>? builder = null, int maxConcurrent = 8)
    {
        var ct = TestContext.Current.CancellationToken;
        var sim = SimBackendHost.Build(new SimBackendOptions
        {
            Urls = "http://127.0.0.1:0",
            Models = [TextModel],
            VisionModels = [VisionModel],
            RecordRequests = true,
        }, configure: b => b.Logging.ClearProviders());
        await sim.StartAsync(ct);
        var market = await MarketUnderTest.StartAsync(configure, b =>
        {
            b.Logging.ClearProviders();
            builder?.Invoke(b);
        }, cancellationToken: ct);

        var dir = new TempDirectory("coinop-provider");
        var host = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = [], DisableDefaults = true });
        host.Logging.ClearProviders();
        host.Services.AddProviderAgent(o =>
        {
            o.MarketUrl = market.Url;
            o.DataDir = dir.Path;
            o.Backends = [new BackendEndpoint(BackendKind.Ollama, new Uri(sim.BaseAddress() + "/"))];
            o.MaxConcurrent = maxConcurrent;
            o.DefaultPrice = new ModelPrice(1_000_000, 3_000_000);
            o.ReconnectInitialDelay = TimeSpan.FromMilliseconds(100);
            o.RetryProbeInterval = TimeSpan.FromMilliseconds(200);
            o.ProbeTimeout = TimeSpan.FromSeconds(10);
        });
        var agent = host.Build();
        await agent.StartAsync(ct);
        await Eventually.WaitAsync(
            () => Task.FromResult<int?>(market.Directory.Snapshot.Count(s => s.Accepting && s.TryGetOffer(TextModel, out _) && s.TryGetOffer(VisionModel, out _))),
            n => n > 0, "the provider online with the simulator's models", cancellationToken: ct);
        return new ChatStack(market, sim, agent, dir);
    }

    /// <summary>The last chat request the backend received, parsed.</summary>
    public JsonElement LastBackendRequest()
    {
        var last = Simulator.RecentRequests()[^1];
        using var document = JsonDocument.Parse(last);
        return document.RootElement.Clone();
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await Agent.StopAsync(new CancellationTokenSource(TimeSpan.FromSeconds(10)).Token);
        }
        catch (OperationCanceledException)
        {
        }

        Agent.Dispose();
        await Market.DisposeAsync();
        await Sim.StopAsync();
        await Sim.DisposeAsync();
        _providerDir.Dispose();
    }
}
