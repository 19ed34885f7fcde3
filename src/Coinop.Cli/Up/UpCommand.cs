using System.CommandLine;
using System.Net.Http.Json;
using System.Runtime.InteropServices;
using System.Text.Json;
using Coinop.Cli.Shared;
using Coinop.Market.Hosting;
using Coinop.Provider.Backends;
using Coinop.Provider.Hosting;
using Coinop.SimBackend.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Coinop.Cli.Up;

/// <summary>
/// <c>coinop up</c>: the whole market on one machine in one process — a market node on SQLite, a provider serving
/// the local inference servers it finds (or the built-in simulator when there are none) — ready for any OpenAI or
/// Anthropic client. Ctrl-C drains the provider, then stops the market.
/// </summary>
public static class UpCommand
{
    public static Command Create()
    {
        var port = new Option<int>("--port") { Description = "Port of the market's API", DefaultValueFactory = _ => 3338 };
        var data = CliOptions.Data(".coinop", "Data directory (market/, provider/ and wallet/ below it)");
        var command = new Command("up", "Run a market node and a provider on this machine (Ctrl-C stops everything)") { port, data };
        command.SetAction(async (parse, ct) =>
        {
            var p = parse.GetValue(port);
            if (p is < 1 or > 65535)
            {
                throw new CliException($"--port {p} is not a port (1-65535)", 2);
            }

            return await RunAsync(p, Path.GetFullPath(parse.GetValue(data)!), ct);
        });
        return command;
    }

    private static async Task<int> RunAsync(int port, string dataDir, CancellationToken cancellationToken)
    {
        // One signal handler for the three hosts, so shutdown happens in order: drain the provider, then the market.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Cancel);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Cancel);

        var marketUrl = $"http://127.0.0.1:{port}";
        Console.WriteLine("coinop up: looking for local inference servers (Ollama 11434, vLLM 8000, llama.cpp 8080, LM Studio 1234)...");
        var found = await FindLocalBackendsAsync(stop.Token);

        await using var simulator = found.Count == 0
            ? SimBackendHost.Build(new SimBackendOptions { Urls = "http://127.0.0.1:0" }, configure: b => Quiet(b.Services, b.Logging))
            : null;
        List<BackendEndpoint> backends = [.. found];
        if (simulator is not null)
        {
            await simulator.StartAsync(stop.Token);
            backends.Add(new BackendEndpoint(BackendKind.OpenAi, new Uri(simulator.BaseAddress())));
        }

        var marketOptions = new MarketOptions
        {
            Urls = marketUrl,
            DataDir = Path.Combine(dataDir, "market"),
            Free = true,
        };
        await using var market = MarketHost.Build(marketOptions, b => Quiet(b.Services, b.Logging));
        try
        {
            await market.StartAsync(stop.Token);
        }
        catch (IOException ex)
        {
            throw new CliException($"cannot listen on {marketUrl}: {ex.Message} (is another market running? try --port)");
        }

        var providerBuilder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = Coinop.Core.Hosting.HostArguments.Default });
        Quiet(providerBuilder.Services, providerBuilder.Logging);
        providerBuilder.Services.AddProviderAgent(o =>
        {
            o.MarketUrl = marketUrl;
            o.DataDir = Path.Combine(dataDir, "provider");
            o.Name = "local";
            o.Backends = backends;
        });
        using var provider = providerBuilder.Build();
        await provider.StartAsync(stop.Token);
        var agent = provider.Services.GetRequiredService<Coinop.Provider.Hosting.ProviderAgent>();

        var models = await WaitForModelsAsync(marketUrl, stop.Token);
        PrintBanner(marketUrl, dataDir, agent.ProviderId, models, simulator is not null, found);

        try
        {
            await Task.Delay(Timeout.Infinite, stop.Token);
        }
        catch (OperationCanceledException)
        {
        }

        Console.WriteLine("coinop up: stopping (draining the provider, then the market)...");
        using var shutdown = new CancellationTokenSource(TimeSpan.FromSeconds(45));
        await provider.StopAsync(shutdown.Token);
        await market.StopAsync(shutdown.Token);
        if (simulator is not null)
        {
            await simulator.StopAsync(shutdown.Token);
        }

        Console.WriteLine("coinop up: stopped");
        return 0;

        void Cancel(PosixSignalContext context)
        {
            context.Cancel = true;
            stop.Cancel();
        }
    }

    private static async Task<List<BackendEndpoint>> FindLocalBackendsAsync(CancellationToken cancellationToken)
    {
        using var http = new HttpClient();
        var probe = new BackendProbe(http, TimeProvider.System);
        var checks = BackendKinds.StandardPorts.Select(async s =>
        {
            var endpoint = new BackendEndpoint(s.Kind, new Uri($"http://127.0.0.1:{s.Port}"));
            var status = await probe.ProbeAsync(endpoint, TimeSpan.FromSeconds(1), cancellationToken);
            return status.Healthy && status.Models.Count > 0 ? endpoint : null;
        });
        return [.. (await Task.WhenAll(checks)).OfType<BackendEndpoint>()];
    }

    /// <summary>Waits until the provider's models are routable through the market.</summary>
    private static async Task<List<string>> WaitForModelsAsync(string marketUrl, CancellationToken cancellationToken)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(TimeSpan.FromSeconds(60));
        while (true)
        {
            try
            {
                var list = await http.GetFromJsonAsync<JsonElement>($"{marketUrl}/v1/models", deadline.Token);
                var models = list.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString()!).ToList();
                if (models.Count > 0)
                {
                    return models;
                }
            }
            catch (HttpRequestException)
            {
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new CliException("the provider did not come online within 60 s (set COINOP_LOG_LEVEL=Information to see why)");
            }

            await Task.Delay(100, deadline.Token);
        }
    }

    private static void PrintBanner(string marketUrl, string dataDir, string? providerId, List<string> models, bool simulated, List<BackendEndpoint> found)
    {
        var model = models[0];
        var source = simulated
            ? "the built-in SIMULATOR (no local Ollama, vLLM, llama.cpp or LM Studio answered; it returns deterministic text, not a real model)"
            : string.Join(", ", found.Select(f => f.ToString()));
        Console.WriteLine($"""

            Coinop is up.
              Market      {marketUrl}   (data in {dataDir})
              Provider    {providerId} serving {string.Join(", ", models)}
                          from {source}
              OpenAI API  {marketUrl}/v1        Anthropic API  {marketUrl}/v1/messages

            Try it:
              ./coinop chat --market {marketUrl} --model {model} "Hello"
              ./coinop providers --market {marketUrl}
              curl -s {marketUrl}/v1/chat/completions -H 'Content-Type: application/json' \
                -d '{"{"}"model":"{model}","messages":[{"{"}"role":"user","content":"Hello"{"}"}]{"}"}'

            Any OpenAI SDK works with the market as its base URL:
              Python  OpenAI(base_url="{marketUrl}/v1", api_key="unused")
              C#      new OpenAIClient(new ApiKeyCredential("unused"), new OpenAIClientOptions {"{"} Endpoint = new Uri("{marketUrl}/v1") {"}"})

            Ctrl-C stops everything.
            """);
    }

    /// <summary>
    /// <c>up</c> owns the console and the signals: hosts log warnings only (COINOP_LOG_LEVEL overrides) and do not
    /// install their own Ctrl-C handling.
    /// </summary>
    private static void Quiet(IServiceCollection services, ILoggingBuilder logging)
    {
        HostLogging.Configure(logging);
        if (Environment.GetEnvironmentVariable("COINOP_LOG_LEVEL") is null)
        {
            logging.SetMinimumLevel(LogLevel.Warning);
        }

        services.AddSingleton<IHostLifetime, OwnedLifetime>();
    }

    private sealed class OwnedLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
