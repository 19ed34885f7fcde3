using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using Coinop.TestKit;
using Microsoft.Playwright;

namespace Coinop.Web.Tests;

/// <summary>
/// What every browser test shares (built once for the whole assembly, to keep the suite cheap): real coinop child
/// processes on loopback (a simulator, a paid market, one provider), a wallet funded at the market's mint, and one
/// headless Debian chromium driven by Playwright. Each test opens its own browser context (fresh cookies and storage).
/// </summary>
public sealed partial class WebMarket : IAsyncLifetime
{
    /// <summary>Debian's chromium: Playwright's own browser download cannot work here (no network), and is never tried.</summary>
    public const string Chromium = "/usr/bin/chromium";

    private readonly List<ChildProcess> _processes = [];
    private readonly TempDirectory _dir = new("coinop-web");
    private IPlaywright? _playwright;

    public HttpClient Http { get; } = new() { Timeout = TimeSpan.FromSeconds(60) };

    public string Url { get; private set; } = "";

    public string SimulatorUrl { get; private set; } = "";

    public string AdminToken => File.ReadAllText(Path.Combine(Dir("market"), "admin.token")).Trim();

    public IBrowser Browser { get; private set; } = null!;

    /// <summary>Where screenshots go: <c>screenshots/</c> in the test output directory.</summary>
    public static string ScreenshotDir { get; } = Path.Combine(AppContext.BaseDirectory, "screenshots");

    public string Dir(string name) => Path.Combine(_dir.Path, name);

    public async ValueTask InitializeAsync()
    {
        if (!File.Exists(Chromium))
        {
            throw new InvalidOperationException($"{Chromium} is missing: ./test.sh installs Debian's chromium (apt-get install chromium)");
        }

        // A slow simulator, so an answer visibly streams in several pieces.
        var sim = Start("sim", ["sim-backend", "--urls", "http://127.0.0.1:0", "--model", "sim-small", "--tokens-per-second", "25"]);
        SimulatorUrl = UrlIn(await sim.WaitForLineAsync("listening on"));
        var market = Start("market", ["market", "--urls", "http://127.0.0.1:0", "--data", Dir("market")]);
        Url = UrlIn(await market.WaitForLineAsync("listening on"));
        await StartProviderAsync("provider-a");
        await WaitForProviderAsync("provider-a");
        await RunCliAsync("wallet", "--data", Dir("wallet"), "mint", "5000", "--mint", Url);

        Directory.CreateDirectory(ScreenshotDir);
        Environment.SetEnvironmentVariable("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1");
        _playwright = await Playwright.CreateAsync();
        // Playwright adds --headless and a fresh temporary --user-data-dir of its own for every launch.
        Browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium,
            Headless = true,
            Args =
            [
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync",
            ],
        });
    }

    /// <summary>Starts a provider agent serving the simulator (not yet necessarily online).</summary>
    public async Task<ChildProcess> StartProviderAsync(string name)
    {
        var provider = Start(name, ["provider", "--market", Url, "--data", Dir(name), "--name", name, "--backend", "openai=" + SimulatorUrl]);
        await provider.WaitForLineAsync("coinop provider ");
        return provider;
    }

    public Task WaitForProviderAsync(string name) =>
        Eventually.WaitAsync(async () => await Http.GetFromJsonAsync<JsonElement>(Url + "/api/providers"),
            list => list.ValueKind == JsonValueKind.Array && list.EnumerateArray().Any(p =>
                p.GetProperty("name").GetString() == name && p.GetProperty("online").GetBoolean() && p.GetProperty("models").GetArrayLength() > 0),
            $"provider {name} online");

    /// <summary>Runs the coinop CLI to the end; returns what it printed (stdout and stderr), failing on a non-zero exit.</summary>
    public async Task<string> RunCliAsync(params string[] args)
    {
        await using var cli = ChildProcess.StartCoinop("cli", args);
        var code = await cli.WaitForExitAsync(TimeSpan.FromSeconds(120));
        Assert.True(code == 0, $"coinop {string.Join(' ', args)} exited {code}:\n{cli.Output}");
        return cli.Output;
    }

    /// <summary>A cashuB token of the market's mint from the test wallet.</summary>
    public async Task<string> TokenAsync(int sats) =>
        (await RunCliAsync("wallet", "--data", Dir("wallet"), "send", sats.ToString(System.Globalization.CultureInfo.InvariantCulture)))
            .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Single(l => l.StartsWith("cashu", StringComparison.Ordinal));

    /// <summary>Receives a token into a second wallet (proof that it is spendable) and returns the sats received.</summary>
    public async Task<int> ReceiveAsync(string token)
    {
        var output = await RunCliAsync("wallet", "--data", Dir("receiver"), "receive", token);
        var match = ReceivedPattern().Match(output);
        Assert.True(match.Success, "the wallet did not say what it received:\n" + output);
        return int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>A fresh browser context (own cookies and storage) at a desktop or phone size.</summary>
    public Task<IBrowserContext> ContextAsync(bool phone = false) => Browser.NewContextAsync(new BrowserNewContextOptions
    {
        ViewportSize = phone ? new ViewportSize { Width = 390, Height = 844 } : new ViewportSize { Width = 1280, Height = 900 },
        IsMobile = phone,
        HasTouch = phone,
        DeviceScaleFactor = 1,
        Permissions = ["clipboard-read", "clipboard-write"],
        BaseURL = Url,
    });

    /// <summary>Writes a full-page screenshot to <see cref="ScreenshotDir"/> and attaches it to the test's results.</summary>
    public static async Task ScreenshotAsync(IPage page, string name)
    {
        var path = Path.Combine(ScreenshotDir, name + ".png");
        var png = await page.ScreenshotAsync(new PageScreenshotOptions { Path = path, FullPage = true });
        TestContext.Current.AddAttachment(name + ".png", png, "image/png");
        TestContext.Current.SendDiagnosticMessage($"screenshot {path}");
    }

    /// <summary>Everything the processes printed, for a failing test's message.</summary>
    public string Diagnostics() => string.Join("\n", _processes.Select(p => $"--- {p.Name} (pid {p.Pid}{(p.HasExited ? ", exited" : "")}):\n{p.Output}"));

    public async ValueTask DisposeAsync()
    {
        if (Browser is not null)
        {
            await Browser.DisposeAsync();
        }

        _playwright?.Dispose();
        foreach (var p in _processes)
        {
            await p.DisposeAsync();
        }

        Http.Dispose();
        _dir.Dispose();
    }

    private ChildProcess Start(string name, IEnumerable<string> args)
    {
        var p = ChildProcess.StartCoinop(name, args, new Dictionary<string, string> { ["COINOP_LOG_LEVEL"] = "Information" });
        _processes.Add(p);
        return p;
    }

    private static string UrlIn(string line) => UrlPattern().Match(line) is { Success: true } m
        ? m.Value
        : throw new InvalidOperationException("no URL in: " + line);

    [GeneratedRegex(@"http://127\.0\.0\.1:\d+")]
    private static partial Regex UrlPattern();

    [GeneratedRegex(@"Received (\d+) sat")]
    private static partial Regex ReceivedPattern();
}

[CollectionDefinition(Name)]
public sealed class WebCollection : ICollectionFixture<WebMarket>
{
    public const string Name = "web";
}
