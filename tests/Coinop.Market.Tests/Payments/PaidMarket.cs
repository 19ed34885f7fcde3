using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Coinop.Ecash;
using Coinop.Ecash.MintApi;
using Coinop.Ecash.MintClient;
using Coinop.Ecash.Tokens;
using Coinop.Ecash.Wallet;
using Coinop.Market.Hosting;
using Coinop.Market.Payments;
using Coinop.Market.Tests.TestProviders;
using Coinop.Storage;
using Coinop.Storage.Ledger;
using Coinop.TestKit;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Coinop.Market.Tests.Payments;

/// <summary>
/// A paid market (no <c>--free</c>) on loopback, on SQLite or a fresh PostgreSQL database, with the helpers payment
/// tests share: mint tokens at its mint, send chat requests with payment headers, read and check the ledger.
/// </summary>
public sealed class PaidMarket : IAsyncDisposable
{
    private readonly string? _ownedDatabase;

    private PaidMarket(MarketUnderTest market, string? ownedDatabase)
    {
        Market = market;
        _ownedDatabase = ownedDatabase;
        Mint = new CashuMintClient(Http, MintUrl);
    }

    public static TheoryData<SqlDialect> Dialects => [SqlDialect.Sqlite, SqlDialect.Postgres];

    public MarketUnderTest Market { get; }

    public string Url => Market.Url;

    public string MintUrl => Url + "/mint";

    public HttpClient Http => Market.Http;

    public CashuMintClient Mint { get; }

    public IServiceProvider Services => Market.App.Services;

    public Database Database => Services.GetRequiredService<Database>();

    public string AdminToken => File.ReadAllText(Path.Combine(Market.Options.DataDir, "admin.token")).Trim();

    public static async Task<PaidMarket> StartAsync(SqlDialect dialect = SqlDialect.Sqlite, Action<MarketOptions>? configure = null,
        Action<WebApplicationBuilder>? builder = null, string? dataDir = null, string? postgresDatabase = null)
    {
        var ct = TestContext.Current.CancellationToken;
        // A database passed in belongs to the test (e.g. for a restart); one created here is dropped on dispose.
        var owned = dialect == SqlDialect.Postgres && postgresDatabase is null ? await TestMarket.CreatePostgresDatabaseAsync() : null;
        postgresDatabase ??= owned;

        var market = await MarketUnderTest.StartAsync(o =>
        {
            o.Free = false;
            if (postgresDatabase is not null)
            {
                o.Postgres = new NpgsqlConnectionStringBuilder(PostgresServer.ConnectionString) { Database = postgresDatabase }.ConnectionString;
            }

            configure?.Invoke(o);
        }, b =>
        {
            b.Logging.ClearProviders();
            builder?.Invoke(b);
        }, dataDir, ct);
        return new PaidMarket(market, owned);
    }

    /// <summary>A <c>cashuB</c> token of this market's mint worth <paramref name="amount"/> sat (minted through the fake Lightning backend).</summary>
    public Task<string> TokenAsync(ulong amount) => TokenAsync(Mint, amount);

    public Task<List<Proof>> ProofsAsync(ulong amount, IEnumerable<ulong>? split = null) => ProofsAsync(Mint, amount, split);

    public static async Task<string> TokenAsync(CashuMintClient mint, ulong amount) =>
        TokenCodec.EncodeV4(new Token(mint.MintUrl, "sat", await ProofsAsync(mint, amount)));

    public static async Task<List<Proof>> ProofsAsync(CashuMintClient mint, ulong amount, IEnumerable<ulong>? split = null)
    {
        var ct = TestContext.Current.CancellationToken;
        var quote = await mint.CreateMintQuoteAsync(amount, ct);
        var active = await mint.GetActiveKeysetAsync(ct);
        var outputs = BlindedOutputs.Create(active.Id, split ?? Amounts.Split(amount));
        var response = await mint.MintAsync(new MintRequest(quote.Quote, [.. outputs.Select(o => o.Message)]), ct);
        return await mint.UnblindAsync(outputs, response.Signatures, ct);
    }

    /// <summary>Redeems a token at its mint (a swap) and returns its value: proves the token is genuine and unspent.</summary>
    public Task<ulong> RedeemAsync(string token) => RedeemAsync(Http, token);

    public static async Task<ulong> RedeemAsync(HttpClient http, string token)
    {
        var decoded = TokenCodec.Decode(token);
        var client = new CashuMintClient(http, decoded.Mint);
        var ids = (await client.GetKeysetsAsync(TestContext.Current.CancellationToken)).Keysets.Select(k => k.Id).ToList();
        var fresh = await client.SwapForFreshAsync(decoded.ResolveKeysetIds(ids).Proofs, TestContext.Current.CancellationToken);
        return fresh.Aggregate(0UL, (s, p) => s + p.Amount);
    }

    public static string ChatBody(bool stream = false, int maxTokens = 100, string model = "llama3") =>
        $$"""{"model":"{{model}}","stream":{{(stream ? "true" : "false")}},"max_tokens":{{maxTokens}},"messages":[{"role":"user","content":"hi"}]}""";

    public async Task<HttpResponseMessage> ChatAsync(string? xCashu = null, string? bearer = null, bool stream = false, int maxTokens = 100)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent(ChatBody(stream, maxTokens), Encoding.UTF8, "application/json"),
        };
        if (xCashu is not null)
        {
            request.Headers.Add(PaidInferenceBilling.HeaderName, xCashu);
        }

        if (bearer is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        }

        var response = await Http.SendAsync(request, TestContext.Current.CancellationToken);
        await response.Content.LoadIntoBufferAsync(TestContext.Current.CancellationToken);
        return response;
    }

    public async Task<JsonElement> PostJsonAsync(string path, object? body, string? bearer = null, HttpStatusCode expected = HttpStatusCode.OK)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path)
        {
            Content = new StringContent(body is null ? "" : JsonSerializer.Serialize(body), Encoding.UTF8, "application/json"),
        };
        return await SendJsonAsync(request, bearer, expected);
    }

    public async Task<JsonElement> GetJsonAsync(string path, string? bearer = null, HttpStatusCode expected = HttpStatusCode.OK) =>
        await SendJsonAsync(new HttpRequestMessage(HttpMethod.Get, path), bearer, expected);

    /// <summary>The ledger summary over HTTP (operator token).</summary>
    public async Task<LedgerSummary> SummaryAsync()
    {
        var s = await GetJsonAsync("/api/ledger/summary", AdminToken);
        long Get(string name) => s.GetProperty(name).GetInt64();
        return new LedgerSummary(Get("received_msat"), Get("spent_msat"), Get("refunded_msat"), Get("balances_msat"), Get("held_msat"),
            Get("provider_earned_msat"), Get("owed_msat"), Get("fee_msat"), Get("paid_out_msat"));
    }

    /// <summary>Checks the ledger equations over HTTP and the journal against the account totals in the store.</summary>
    public async Task<LedgerSummary> AssertBalancedAsync()
    {
        var summary = await SummaryAsync();
        LedgerAssert.Balanced(summary);
        Assert.Empty(await Services.GetRequiredService<ILedgerStore>().AuditAsync(TestContext.Current.CancellationToken));
        return summary;
    }

    public async ValueTask DisposeAsync()
    {
        await Market.DisposeAsync();
        await DropDatabaseAsync(_ownedDatabase);
    }

    public static async Task DropDatabaseAsync(string? database)
    {
        if (database is null)
        {
            return;
        }

        NpgsqlConnection.ClearAllPools();
        await using var admin = new NpgsqlConnection(PostgresServer.ConnectionString);
        await admin.OpenAsync();
        await using var cmd = new NpgsqlCommand($"DROP DATABASE IF EXISTS {database} WITH (FORCE)", admin);
        await cmd.ExecuteNonQueryAsync();
    }

    private async Task<JsonElement> SendJsonAsync(HttpRequestMessage request, string? bearer, HttpStatusCode expected)
    {
        using (request)
        {
            request.Version = Http.DefaultRequestVersion;
            request.VersionPolicy = Http.DefaultVersionPolicy;
            if (bearer is not null)
            {
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
            }

            using var response = await Http.SendAsync(request, TestContext.Current.CancellationToken);
            var text = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
            Assert.True(expected == response.StatusCode, $"expected {(int)expected}, got {(int)response.StatusCode}: {text}");
            using var doc = JsonDocument.Parse(text);
            return doc.RootElement.Clone();
        }
    }
}

/// <summary>The ledger equations that must hold at every commit.</summary>
public static class LedgerAssert
{
    public static void Balanced(LedgerSummary s) => Assert.Empty(s.Imbalances());
}
