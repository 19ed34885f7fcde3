using Coinop.Provider.Hosting;
using Coinop.SimBackend.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Coinop.Provider.Tests.Infrastructure;

/// <summary>The real simulator on a loopback port.</summary>
public sealed class SimServer : IAsyncDisposable
{
    private SimServer(WebApplication app)
    {
        App = app;
        Url = app.BaseAddress();
    }

    public WebApplication App { get; }

    public string Url { get; }

    public Simulator Simulator => App.Simulator();

    public static async Task<SimServer> StartAsync(Action<SimBackendOptions>? configure = null, TimeProvider? time = null, int port = 0)
    {
        var options = new SimBackendOptions { Urls = $"http://127.0.0.1:{port}" };
        configure?.Invoke(options);
        var app = SimBackendHost.Build(options, time, b => b.Logging.ClearProviders());
        await app.StartAsync();
        return new SimServer(app);
    }

    public async ValueTask DisposeAsync()
    {
        await App.StopAsync();
        await App.DisposeAsync();
    }
}

/// <summary>A provider agent in a generic host, as <c>coinop provider</c> and <c>coinop up</c> run it.</summary>
public sealed class RunningAgent : IAsyncDisposable
{
    private RunningAgent(IHost host, CapturedLogs logs)
    {
        Host = host;
        Logs = logs;
        Agent = host.Services.GetRequiredService<ProviderAgent>();
    }

    public IHost Host { get; }

    public ProviderAgent Agent { get; }

    public CapturedLogs Logs { get; }

    public static async Task<RunningAgent> StartAsync(string marketUrl, string dataDir, Action<ProviderOptions>? configure = null, TimeProvider? time = null)
    {
        var logs = new CapturedLogs();
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = [], DisableDefaults = true });
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(logs);
        builder.Logging.SetMinimumLevel(LogLevel.Debug);
        if (time is not null)
        {
            builder.Services.AddSingleton(time);
        }

        builder.Services.AddProviderAgent(o =>
        {
            o.MarketUrl = marketUrl;
            o.DataDir = dataDir;
            o.ReconnectInitialDelay = TimeSpan.FromMilliseconds(100);
            o.ReconnectMaxDelay = TimeSpan.FromSeconds(2);
            o.RetryProbeInterval = TimeSpan.FromMilliseconds(200);
            o.ProbeTimeout = TimeSpan.FromSeconds(5);
            configure?.Invoke(o);
        });
        var host = builder.Build();
        try
        {
            await host.StartAsync();
        }
        catch
        {
            host.Dispose();
            throw;
        }

        return new RunningAgent(host, logs);
    }

    /// <summary>A graceful stop: the agent drains.</summary>
    public Task StopAsync() => Host.StopAsync();

    public async ValueTask DisposeAsync()
    {
        try
        {
            await Host.StopAsync(new CancellationTokenSource(TimeSpan.FromSeconds(10)).Token);
        }
        catch (OperationCanceledException)
        {
        }

        Host.Dispose();
    }
}
