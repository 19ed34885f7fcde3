using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Coinop.Ecash;
using Coinop.Ecash.MintApi;
using Coinop.Ecash.MintClient;
using Coinop.Ecash.Tokens;
using Coinop.Ecash.Wallet;
using Coinop.Storage;
using Coinop.Storage.Ledger;
using Coinop.TestKit;
using Npgsql;

namespace Coinop.EndToEnd.Tests;

/// <summary>
/// Several market nodes, each a real <c>coinop market</c> process, on one fresh PostgreSQL database, behind a real HAProxy
/// (started by the test with a generated configuration: round robin over the nodes' <c>/healthz</c>, <c>/internal/</c>
/// refused at the door). All nodes share the balancer's URL as their public URL, as an operator would set them up.
/// </summary>
public sealed class MarketNodes : IAsyncDisposable
{
    private readonly Cluster _cluster;
    private readonly string _database;
    private readonly List<(ChildProcess Process, string Url)> _nodes = [];

    private MarketNodes(Cluster cluster, string database, string connection, int balancerPort)
    {
        _cluster = cluster;
        _database = database;
        Connection = connection;
        BalancerUrl = $"http://127.0.0.1:{balancerPort}";
    }

    public string Connection { get; }

    /// <summary>The balancer in front of the nodes (every node's public URL).</summary>
    public string BalancerUrl { get; }

    public ChildProcess? Balancer { get; private set; }

    public string Url(int node) => _nodes[node].Url;

    public ChildProcess Process(int node) => _nodes[node].Process;

    /// <summary>Every node URL, comma-separated, as a provider's <c>--market</c>.</summary>
    public string AllUrls => string.Join(',', _nodes.Select(n => n.Url));

    public string AdminToken => File.ReadAllText(Path.Combine(_cluster.Dir("node1"), "admin.token")).Trim();

    public static async Task<MarketNodes> StartAsync(Cluster cluster, int count, bool paid = false)
    {
        var ct = TestContext.Current.CancellationToken;
        var database = "t_" + Guid.NewGuid().ToString("N");
        await using (var admin = new NpgsqlConnection(PostgresServer.ConnectionString))
        {
            await admin.OpenAsync(ct);
            await using var create = new NpgsqlCommand($"CREATE DATABASE {database}", admin);
            await create.ExecuteNonQueryAsync(ct);
        }

        var connection = new NpgsqlConnectionStringBuilder(PostgresServer.ConnectionString) { Database = database, MaxPoolSize = 20 }.ConnectionString;
        var nodes = new MarketNodes(cluster, database, connection, Ports.GetFree());
        try
        {
            for (var i = 0; i < count; i++)
            {
                nodes._nodes.Add((null!, $"http://127.0.0.1:{Ports.GetFree()}"));
            }

            // The first node creates the schema; the others start together once it is there.
            await nodes.Launch(0, paid);
            await Task.WhenAll(Enumerable.Range(1, count - 1).Select(i => nodes.Launch(i, paid)).ToList());
            await nodes.StartBalancerAsync();
            return nodes;
        }
        catch
        {
            await nodes.DisposeAsync();
            throw;
        }
    }

    /// <summary>Starts a node's process (at once) and returns a task that completes when the node says it is ready.</summary>
    private Task Launch(int index, bool paid)
    {
        var name = "node" + (index + 1);
        var url = _nodes[index].Url;
        var process = _cluster.Start(name,
        [
            "market", "--urls", url, "--node-url", url, "--public-url", BalancerUrl, "--data", _cluster.Dir(name), "--postgres", Connection,
            .. paid ? Array.Empty<string>() : ["--free"],
        ]);
        _nodes[index] = (process, url);
        return WaitReadyAsync(process, url);
    }

    private static async Task WaitReadyAsync(ChildProcess process, string url)
    {
        await process.WaitForLineAsync("listening on", TimeSpan.FromSeconds(120));
        await Eventually.WaitForHttpAsync(url + "/healthz", TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);
    }

    private async Task StartBalancerAsync()
    {
        var config = new StringBuilder($"""
            global
                maxconn 2000
            defaults
                mode http
                timeout connect 2s
                timeout client 120s
                timeout server 120s
                option redispatch
                retries 3
                retry-on conn-failure
            frontend market
                bind {BalancerUrl["http://".Length..]}
                http-request deny deny_status 403 if {"{"} path_beg /internal/ {"}"}
                default_backend nodes
            backend nodes
                balance roundrobin
                option httpchk GET /healthz
                http-check expect status 200

            """);
        for (var i = 0; i < _nodes.Count; i++)
        {
            config.AppendLine($"    server node{i + 1} {_nodes[i].Url["http://".Length..]} check inter 500ms fall 2 rise 2");
        }

        var path = Path.Combine(_cluster.Dir("haproxy"), "haproxy.cfg");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        await File.WriteAllTextAsync(path, config.ToString(), TestContext.Current.CancellationToken);
        Balancer = ChildProcess.Start("haproxy", "haproxy", ["-f", path, "-db"]);
        await Eventually.WaitForHttpAsync(BalancerUrl + "/healthz", TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);
    }

    /// <summary>A <c>cashuB</c> token of the market's mint (minted through the balancer, paid by the fake Lightning backend).</summary>
    public async Task<string> TokenAsync(ulong amount)
    {
        var ct = TestContext.Current.CancellationToken;
        var mint = new CashuMintClient(_cluster.Http, BalancerUrl + "/mint");
        var quote = await mint.CreateMintQuoteAsync(amount, ct);
        var active = await mint.GetActiveKeysetAsync(ct);
        var outputs = BlindedOutputs.Create(active.Id, Amounts.Split(amount));
        var response = await mint.MintAsync(new MintRequest(quote.Quote, [.. outputs.Select(o => o.Message)]), ct);
        var proofs = await mint.UnblindAsync(outputs, response.Signatures, ct);
        return TokenCodec.EncodeV4(new Token(mint.MintUrl, "sat", proofs));
    }

    /// <summary>The mint's state of each proof of <paramref name="token"/> (NUT-07).</summary>
    public async Task<IReadOnlyList<string>> TokenStatesAsync(string token)
    {
        var decoded = TokenCodec.Decode(token);
        var mint = new CashuMintClient(_cluster.Http, BalancerUrl + "/mint");
        var states = await mint.CheckStateAsync([.. decoded.Proofs.Select(p => Convert.ToHexStringLower(Coinop.Ecash.Crypto.Bdhke.Y(p.Secret)))],
            TestContext.Current.CancellationToken);
        return [.. states.States.Select(s => s.State)];
    }

    /// <summary>The ledger's totals (through the balancer, with the market's one admin token).</summary>
    public async Task<LedgerSummary> SummaryAsync()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, BalancerUrl + "/api/ledger/summary");
        request.Headers.Authorization = new("Bearer", AdminToken);
        using var response = await _cluster.Http.SendAsync(request, TestContext.Current.CancellationToken);
        var s = await response.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        long Get(string name) => s.GetProperty(name).GetInt64();
        return new LedgerSummary(Get("received_msat"), Get("spent_msat"), Get("refunded_msat"), Get("balances_msat"), Get("held_msat"),
            Get("provider_earned_msat"), Get("owed_msat"), Get("fee_msat"), Get("paid_out_msat"));
    }

    /// <summary>Journal against account totals, straight from the store.</summary>
    public async Task<IReadOnlyList<string>> AuditAsync()
    {
        await using var store = Database.Postgres(Connection);
        return await new LedgerStore(store).AuditAsync(TestContext.Current.CancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        if (Balancer is not null)
        {
            await Balancer.DisposeAsync();
        }

        NpgsqlConnection.ClearAllPools();
        await using var admin = new NpgsqlConnection(PostgresServer.ConnectionString);
        await admin.OpenAsync();
        // The nodes are the cluster's processes (killed with it); their connections go with the database.
        await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS {_database} WITH (FORCE)", admin);
        await drop.ExecuteNonQueryAsync();
    }
}
