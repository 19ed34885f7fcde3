using Coinop.Market.Gateway;
using Coinop.Market.Hosting;
using Coinop.Storage.Providers;
using Coinop.TestKit;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace Coinop.Market.Tests.TestProviders;

/// <summary>A real market node on a loopback port (Kestrel, SQLite in a temp dir), started and stopped by a test.</summary>
public sealed class MarketUnderTest : IAsyncDisposable
{
    private readonly TempDirectory? _ownedDir;

    private MarketUnderTest(WebApplication app, MarketOptions options, TempDirectory? ownedDir)
    {
        App = app;
        Options = options;
        _ownedDir = ownedDir;
        Url = app.BoundAddress();
        Http = new HttpClient { BaseAddress = new Uri(Url), Timeout = TimeSpan.FromSeconds(60) };
    }

    public WebApplication App { get; }

    public MarketOptions Options { get; }

    public string Url { get; }

    public HttpClient Http { get; }

    public ProviderDirectory Directory => App.Services.GetRequiredService<ProviderDirectory>();

    public IProviderRegistryStore Registry => App.Services.GetRequiredService<IProviderRegistryStore>();

    public static async Task<MarketUnderTest> StartAsync(Action<MarketOptions>? configure = null, Action<WebApplicationBuilder>? builder = null,
        string? dataDir = null, CancellationToken cancellationToken = default)
    {
        var dir = dataDir is null ? new TempDirectory("coinop-market") : null;
        var options = new MarketOptions { Urls = "http://127.0.0.1:0", DataDir = dataDir ?? dir!.Path, Free = true };
        configure?.Invoke(options);
        var app = MarketHost.Build(options, builder);
        await app.StartAsync(cancellationToken);
        return new MarketUnderTest(app, options, dir);
    }

    /// <summary>Connects a provider that offers <paramref name="model"/> and waits until the market applied its capabilities.</summary>
    public async Task<TestProvider> ProviderAsync(string model, CancellationToken cancellationToken, string name = "test", long inSats = 1000, long outSats = 3000,
        bool anthropicNative = false, bool embeddings = false, JobScript? script = null)
    {
        var provider = await TestProvider.ConnectAsync(Url, name, cancellationToken: cancellationToken);
        Assert.NotNull(provider.AuthOk);
        if (script is not null)
        {
            provider.Script = script;
        }

        await provider.OfferAsync(model, cancellationToken, inSats, outSats, anthropicNative, embeddings);
        return provider;
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await App.StopAsync(CancellationToken.None);
        await App.DisposeAsync();
        _ownedDir?.Dispose();
    }
}
