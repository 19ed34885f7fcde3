using System.CommandLine;
using System.Globalization;
using System.Net.Http.Json;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Coinop.Cli.Shared;
using Coinop.Market.Hosting;
using Coinop.Provider.Backends;
using Coinop.Provider.Hosting;
using Coinop.SimBackend.Hosting;
using Coinop.Wallet;
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
        var free = new Option<bool>("--free") { Description = "Serve without payment (by default requests are paid from the local wallet)" };
        var command = new Command("up", "Run a market node and a provider on this machine, and fund a local wallet with demo ecash (Ctrl-C stops everything)") { port, data, free };
        command.SetAction(async (parse, ct) =>
        {
            var p = parse.GetValue(port);
            if (p is < 1 or > 65535)
            {
                throw new CliException($"--port {p} is not a port (1-65535)", 2);
            }

            return await RunAsync(p, Path.GetFullPath(parse.GetValue(data)!), parse.GetValue(free), ct);
        });
        return command;
    }

    /// <summary>What <c>up</c> mints into the local wallet when it holds less than <see cref="WalletFloor"/> at this market.</summary>
    private const ulong WalletFunding = 10_000;

    private const ulong WalletFloor = 1_000;

    private static async Task<int> RunAsync(int port, string dataDir, bool free, CancellationToken cancellationToken)
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
            Free = free,
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

        var providerBuilder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = Coinop.Runtime.Hosting.HostArguments.Default });
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
        (string Dir, ulong Balance, ulong Minted)? wallet = free ? null : await FundWalletAsync(marketUrl, Path.Combine(dataDir, "wallet"), stop.Token);
        PrintBanner(marketUrl, dataDir, agent.ProviderId, models, simulator is not null, found, wallet);

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

    /// <summary>
    /// Tops the local wallet up through the market's mint. The mint's Lightning backend is the fake one, which marks
    /// invoices paid at once: this is demo money, and the banner says so.
    /// </summary>
    private static async Task<(string Dir, ulong Balance, ulong Minted)> FundWalletAsync(string marketUrl, string walletDir, CancellationToken cancellationToken)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        var wallet = await CashuWallet.OpenAsync(walletDir, http, TimeProvider.System, cancellationToken);
        var mint = await wallet.ResolveMintUrlAsync(marketUrl, cancellationToken);
        var balance = (await wallet.BalancesAsync(cancellationToken)).FirstOrDefault(b => b.Mint == mint)?.Available ?? 0;
        ulong minted = 0;
        if (balance < WalletFloor)
        {
            minted = (await wallet.FundAsync(marketUrl, WalletFunding, TimeSpan.FromSeconds(30), cancellationToken)).Amount;
            balance += minted;
        }

        return (walletDir, balance, minted);
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
            catch (OperationCanceledException) when (!deadline.IsCancellationRequested)
            {
                // One answer slower than the client's 5 s (a loaded machine's first request): ask again.
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new CliException("the provider did not come online within 60 s (set COINOP_LOG_LEVEL=Information to see why)");
            }

            await Task.Delay(100, deadline.Token);
        }
    }

    private static void PrintBanner(string marketUrl, string dataDir, string? providerId, List<string> models, bool simulated,
        List<BackendEndpoint> found, (string Dir, ulong Balance, ulong Minted)? wallet)
    {
        var model = models.Contains("sim-small") ? "sim-small" : models[0];
        var source = simulated
            ? "the built-in SIMULATOR (no local Ollama, vLLM, llama.cpp or LM Studio answered; it returns deterministic text, not a real model)"
            : string.Join(", ", found.Select(f => f.ToString()));
        var body = $$"""{"model":"{{model}}","messages":[{"role":"user","content":"Hello"}]}""";
        const string createBody = """{"token":"cashuB…"}""";
        var walletFlag = wallet is { } w && w.Dir != Path.GetFullPath(".coinop/wallet") ? $" --wallet {w.Dir}" : "";
        var text = new StringBuilder($"""

            Coinop is up.
              Market      {marketUrl}   (data in {dataDir})
              Provider    {providerId} serving {string.Join(", ", models)}
                          from {source}
              OpenAI API  {marketUrl}/v1        Anthropic API  {marketUrl}/v1/messages

            """);
        if (wallet is { } paid)
        {
            var minted = paid.Minted > 0 ? $"; {paid.Minted:N0} sat just minted through the FAKE Lightning backend: demo money" : "";
            text.Append(CultureInfo.InvariantCulture, $"""
              Wallet      {paid.Dir}: {paid.Balance:N0} sat{minted}
                          Requests are paid with Cashu ecash; `coinop chat` pays from this wallet and keeps the change.

            Try it:
              ./coinop chat --market {marketUrl} --model {model}{walletFlag} "Hello"
              ./coinop providers --market {marketUrl}
              ./coinop wallet --data {paid.Dir} balance

            Pay a request by hand (the change comes back as a token in the X-Cashu response header):
              TOKEN=$(./coinop wallet --data {paid.Dir} send 50)
              curl -si {marketUrl}/v1/chat/completions -H "X-Cashu: $TOKEN" \
                -H 'Content-Type: application/json' -d '{body}'

            Any OpenAI SDK works: turn a token into a balance key and use it as the API key:
              ./coinop wallet --data {paid.Dir} send 500          # prints a cashuB… token
              curl -s {marketUrl}/v1/balance/create -H 'Content-Type: application/json' -d '{createBody}'
              Python  OpenAI(base_url="{marketUrl}/v1", api_key="sk-…")
              C#      new OpenAIClient(new ApiKeyCredential("sk-…"), new OpenAIClientOptions {"{"} Endpoint = new Uri("{marketUrl}/v1") {"}"})

            """);
        }
        else
        {
            text.Append(CultureInfo.InvariantCulture, $"""
            Serving for free (--free). Try it:
              ./coinop chat --market {marketUrl} --model {model} "Hello"
              ./coinop providers --market {marketUrl}
              curl -s {marketUrl}/v1/chat/completions -H 'Content-Type: application/json' \
                -d '{body}'

            Any OpenAI SDK works with the market as its base URL:
              Python  OpenAI(base_url="{marketUrl}/v1", api_key="unused")
              C#      new OpenAIClient(new ApiKeyCredential("unused"), new OpenAIClientOptions {"{"} Endpoint = new Uri("{marketUrl}/v1") {"}"})

            """);
        }

        text.AppendLine("Ctrl-C stops everything.");
        Console.WriteLine(text.ToString());
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
