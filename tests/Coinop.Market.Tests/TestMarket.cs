using Coinop.Ecash;
using Coinop.Ecash.MintApi;
using Coinop.Ecash.MintClient;
using Coinop.Ecash.Wallet;
using Coinop.Market.Hosting;
using Coinop.Market.Mint;
using Coinop.Market.Mint.Lightning;
using Coinop.Storage;
using Coinop.TestKit;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Coinop.Market.Tests;

/// <summary>A real market on loopback port 0 (SQLite in a temp dir, or a fresh PostgreSQL database), with a mint client.</summary>
public sealed class TestMarket : IAsyncDisposable
{
    private readonly TempDirectory _dir;
    private readonly bool _ownsDir;
    private readonly string? _postgresDatabase;

    private TestMarket(WebApplication app, TempDirectory dir, bool ownsDir, string? postgresDatabase)
    {
        App = app;
        _dir = dir;
        _ownsDir = ownsDir;
        _postgresDatabase = postgresDatabase;
        Url = app.BoundAddress();
        Http = new HttpClient { Timeout = TimeSpan.FromSeconds(60) };
        Mint = new CashuMintClient(Http, MintUrl);
    }

    public static TheoryData<SqlDialect> Dialects => [SqlDialect.Sqlite, SqlDialect.Postgres];

    public WebApplication App { get; }

    public string Url { get; }

    public string MintUrl => Url + "/mint";

    public string DataDir => _dir.Path;

    public HttpClient Http { get; }

    public CashuMintClient Mint { get; }

    public FakeLightningBackend Lightning => App.Services.GetRequiredService<FakeLightningBackend>();

    public CashuMint CashuMint => App.Services.GetRequiredService<CashuMint>();

    public Database Database => App.Services.GetRequiredService<Database>();

    public static async Task<TestMarket> StartAsync(SqlDialect dialect = SqlDialect.Sqlite, Action<IServiceCollection>? services = null,
        TempDirectory? dataDir = null, string? postgresDatabase = null, Action<MarketOptions>? options = null)
    {
        var dir = dataDir ?? new TempDirectory("coinop-market");
        string? connection = null;
        if (dialect == SqlDialect.Postgres)
        {
            postgresDatabase ??= await CreatePostgresDatabaseAsync();
            connection = new NpgsqlConnectionStringBuilder(PostgresServer.ConnectionString) { Database = postgresDatabase }.ConnectionString;
        }

        var marketOptions = new MarketOptions { Urls = "http://127.0.0.1:0", DataDir = dir.Path, Free = true, Postgres = connection };
        options?.Invoke(marketOptions);
        var app = MarketHost.Build(
            marketOptions,
            b =>
            {
                b.Logging.ClearProviders();
                if (Environment.GetEnvironmentVariable("COINOP_TEST_LOGS") == "1")
                {
                    b.Logging.AddSimpleConsole(); // debugging aid: the market's own log on the test's output
                }

                services?.Invoke(b.Services);
            });
        await app.StartAsync(TestContext.Current.CancellationToken);
        return new TestMarket(app, dir, ownsDir: dataDir is null, postgresDatabase);
    }

    public static async Task<string> CreatePostgresDatabaseAsync()
    {
        var name = "t_" + Guid.NewGuid().ToString("N");
        await using var admin = new NpgsqlConnection(PostgresServer.ConnectionString);
        await admin.OpenAsync();
        await using var cmd = new NpgsqlCommand($"CREATE DATABASE {name}", admin);
        await cmd.ExecuteNonQueryAsync();
        return name;
    }

    /// <summary>Mints <paramref name="amount"/> sat through the fake Lightning backend and returns DLEQ-verified proofs.</summary>
    public async Task<List<Proof>> MintProofsAsync(ulong amount, IEnumerable<ulong>? split = null)
    {
        var ct = TestContext.Current.CancellationToken;
        var quote = await Mint.CreateMintQuoteAsync(amount, ct);
        var active = await Mint.GetActiveKeysetAsync(ct);
        var outputs = BlindedOutputs.Create(active.Id, split ?? Amounts.Split(amount));
        var response = await Mint.MintAsync(new MintRequest(quote.Quote, [.. outputs.Select(o => o.Message)]), ct);
        return await Mint.UnblindAsync(outputs, response.Signatures, ct);
    }

    /// <summary>Stops the market but keeps its data (for restart tests).</summary>
    public async Task StopAsync()
    {
        await App.StopAsync(TestContext.Current.CancellationToken);
        await App.DisposeAsync();
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        try
        {
            await App.StopAsync(CancellationToken.None);
            await App.DisposeAsync();
        }
        catch (ObjectDisposedException)
        {
        }

        if (_ownsDir)
        {
            _dir.Dispose();
        }

        if (_postgresDatabase is not null)
        {
            NpgsqlConnection.ClearAllPools();
            await using var admin = new NpgsqlConnection(PostgresServer.ConnectionString);
            await admin.OpenAsync();
            await using var cmd = new NpgsqlCommand($"DROP DATABASE IF EXISTS {_postgresDatabase} WITH (FORCE)", admin);
            await cmd.ExecuteNonQueryAsync();
        }
    }
}

/// <summary>Asserts a mint error by code.</summary>
public static class CashuAssert
{
    public static async Task<CashuException> FailsWith(int code, Func<Task> action)
    {
        var ex = await Assert.ThrowsAsync<CashuException>(action);
        Assert.True(code == ex.Code, $"expected code {code}, got {ex.Code}: {ex.Detail}");
        return ex;
    }
}
