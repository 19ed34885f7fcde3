using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using Coinop.TestKit;

namespace Coinop.EndToEnd.Tests;

/// <summary>
/// Real coinop processes for one test: simulators, market nodes and provider agents, each a child process of the
/// built CLI on loopback. Everything is killed and the data is deleted when the test ends.
/// </summary>
public sealed partial class Cluster : IAsyncDisposable
{
    private readonly List<ChildProcess> _processes = [];
    private readonly TempDirectory _dir = new("coinop-e2e");

    public HttpClient Http { get; } = new() { Timeout = TimeSpan.FromSeconds(60) };

    public string Dir(string name) => Path.Combine(_dir.Path, name);

    /// <summary>Starts a simulator on a port of its own choosing and returns it with its URL.</summary>
    public async Task<(ChildProcess Process, string Url)> StartSimulatorAsync(string name, params string[] args)
    {
        var sim = Start(name, ["sim-backend", "--urls", "http://127.0.0.1:0", .. args]);
        var line = await sim.WaitForLineAsync("listening on");
        return (sim, UrlIn(line));
    }

    /// <summary>Starts a market node; with <paramref name="port"/> 0 it picks a free port and returns its URL.</summary>
    public async Task<(ChildProcess Process, string Url)> StartMarketAsync(string name, int port = 0, params string[] args)
    {
        var market = Start(name, ["market", "--urls", $"http://127.0.0.1:{port}", "--data", Dir(name), .. args]);
        var line = await market.WaitForLineAsync("listening on");
        return (market, UrlIn(line));
    }

    /// <summary>Starts a provider agent and returns once it printed its id (not yet necessarily online).</summary>
    public async Task<(ChildProcess Process, string Id)> StartProviderAsync(string name, string marketUrl, params string[] args)
    {
        var provider = Start(name, ["provider", "--market", marketUrl, "--data", Dir(name), "--name", name, .. args]);
        var line = await provider.WaitForLineAsync("coinop provider ");
        return (provider, line.Split(' ')[2]);
    }

    public ChildProcess Start(string name, IEnumerable<string> args)
    {
        var p = ChildProcess.StartCoinop(name, args, new Dictionary<string, string> { ["COINOP_LOG_LEVEL"] = "Information" });
        _processes.Add(p);
        return p;
    }

    /// <summary>The market's view of one provider (from <c>/api/providers</c>), or null when it does not list it.</summary>
    public async Task<JsonElement?> ProviderAsync(string marketUrl, string providerId)
    {
        var list = await Http.GetFromJsonAsync<JsonElement>($"{marketUrl}/api/providers");
        foreach (var p in list.EnumerateArray())
        {
            if (p.GetProperty("id").GetString() == providerId)
            {
                return p;
            }
        }

        return null;
    }

    /// <summary>Waits until the market routes to the provider (online with at least one model).</summary>
    public Task WaitOnlineAsync(string marketUrl, string providerId) =>
        Eventually.WaitAsync(
            () => ProviderAsync(marketUrl, providerId),
            p => p is { } e && e.GetProperty("online").GetBoolean() && e.GetProperty("models").GetArrayLength() > 0,
            $"provider {providerId} online at {marketUrl}");

    public Task WaitOfflineAsync(string marketUrl, string providerId) =>
        Eventually.WaitAsync(
            () => ProviderAsync(marketUrl, providerId),
            p => p is { } e && !e.GetProperty("online").GetBoolean(),
            $"provider {providerId} offline at {marketUrl}");

    /// <summary>Everything each process printed, for a failing test's message.</summary>
    public string Diagnostics() => string.Join("\n", _processes.Select(p => $"--- {p.Name} (pid {p.Pid}{(p.HasExited ? ", exited" : "")}):\n{p.Output}"));

    public async ValueTask DisposeAsync()
    {
        foreach (var p in _processes)
        {
            await p.DisposeAsync();
        }

        Http.Dispose();
        _dir.Dispose();
    }

    private static string UrlIn(string line) => UrlPattern().Match(line) is { Success: true } m
        ? m.Value.TrimEnd(',', ';', ')')
        : throw new InvalidOperationException("no URL in: " + line);

    [GeneratedRegex(@"http://127\.0\.0\.1:\d+")]
    private static partial Regex UrlPattern();
}
