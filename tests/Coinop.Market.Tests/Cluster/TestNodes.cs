using Coinop.Market.Cluster;
using Coinop.Market.Tests.Payments;
using Coinop.Market.Tests.TestProviders;
using Coinop.TestKit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Npgsql;
using Eventually = Coinop.Market.Tests.Gateway.Eventually;

namespace Coinop.Market.Tests.Cluster;

/// <summary>
/// Several market nodes in this test process on one fresh PostgreSQL database, each its own application (its own DI
/// container, data directory, Kestrel port): they share nothing but the database and the network, like real nodes. The
/// cluster timings are shortened so views and duties move in tens of milliseconds. All nodes share one public URL (the
/// first node's), as nodes behind one balancer do, so one mint's tokens are every node's.
/// </summary>
public sealed class TestNodes : IAsyncDisposable
{
    private readonly string _database;
    private readonly List<MarketUnderTest?> _nodes = [];

    private TestNodes(string database, string connection, string publicUrl)
    {
        _database = database;
        Connection = connection;
        PublicUrl = publicUrl;
    }

    public string Connection { get; }

    public string PublicUrl { get; }

    public MarketUnderTest this[int index] => _nodes[index] ?? throw new InvalidOperationException($"node {index} was stopped");

    public int Count => _nodes.Count;

    /// <summary>
    /// Short intervals: heartbeats every 100 ms, duties renewed every 100 ms, views every 50 ms. The TTLs stay at their
    /// production values: no test here is about a node that dies without leaving (a node that stops leaves at once), and
    /// with a 600 ms TTL a node that was only slow on a loaded machine was judged dead, which cut the streams forwarded
    /// to it ("node_lost") and moved its duties.
    /// </summary>
    public static void Fast(ClusterOptions o)
    {
        o.NodeHeartbeatInterval = TimeSpan.FromMilliseconds(100);
        o.NodeTtl = TimeSpan.FromSeconds(10);
        o.DutyRenewInterval = TimeSpan.FromMilliseconds(100);
        o.DutyTtl = TimeSpan.FromSeconds(9);
        o.ViewRefreshInterval = TimeSpan.FromMilliseconds(50);
        o.PublishInterval = TimeSpan.FromMilliseconds(25);
        o.TakeoverInterval = TimeSpan.FromMilliseconds(100);
    }

    public static async Task<TestNodes> StartAsync(int count, bool paid = false, Action<ClusterOptions>? cluster = null, Action<IServiceCollection>? services = null)
    {
        var database = await TestMarket.CreatePostgresDatabaseAsync();
        var connection = new NpgsqlConnectionStringBuilder(PostgresServer.ConnectionString) { Database = database }.ConnectionString;
        var nodes = new TestNodes(database, connection, $"http://127.0.0.1:{Ports.GetFree()}");
        try
        {
            for (var i = 0; i < count; i++)
            {
                await nodes.AddAsync(paid, cluster, services);
            }

            await nodes.RefreshAsync();
            return nodes;
        }
        catch
        {
            await nodes.DisposeAsync();
            throw;
        }
    }

    /// <summary>Starts one more node on the same database.</summary>
    public async Task<MarketUnderTest> AddAsync(bool paid = false, Action<ClusterOptions>? cluster = null, Action<IServiceCollection>? services = null)
    {
        var first = _nodes.Count == 0;
        var node = await MarketUnderTest.StartAsync(o =>
        {
            o.Postgres = Connection;
            o.Free = !paid;
            o.PublicUrl = PublicUrl;
            if (first)
            {
                o.Urls = PublicUrl; // the shared public URL is the first node's own address
            }
        }, b =>
        {
            b.Logging.ClearProviders();
            b.Services.Configure<ClusterOptions>(o =>
            {
                Fast(o);
                cluster?.Invoke(o);
            });
            services?.Invoke(b.Services);
        }, cancellationToken: TestContext.Current.CancellationToken);
        _nodes.Add(node);
        await node.App.Services.GetRequiredService<NodeRegistry>().Joined.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
        return node;
    }

    public static T Get<T>(MarketUnderTest node) where T : notnull => node.App.Services.GetRequiredService<T>();

    /// <summary>Makes every running node publish its providers' figures and read the others' now.</summary>
    public async Task RefreshAsync()
    {
        var ct = TestContext.Current.CancellationToken;
        foreach (var node in _nodes.OfType<MarketUnderTest>())
        {
            await Get<LinkPublisher>(node).PublishAsync(ct);
        }

        foreach (var node in _nodes.OfType<MarketUnderTest>())
        {
            await Get<ClusterView>(node).RefreshAsync(ct);
        }
    }

    /// <summary>Waits until <paramref name="node"/> routes to <paramref name="providerId"/> (linked to any node) and it takes jobs.</summary>
    public Task WaitRoutableAsync(int node, string providerId) =>
        Eventually.TrueAsync(async () =>
        {
            await RefreshAsync();
            return Get<ClusterView>(this[node]).Snapshot.Any(p => p.ProviderId == providerId && p.Accepting);
        }, TestContext.Current.CancellationToken);

    /// <summary>Stops a node gracefully (it leaves the market).</summary>
    public async Task StopAsync(int index)
    {
        var node = this[index];
        _nodes[index] = null;
        await node.DisposeAsync();
    }

    public string AdminToken => File.ReadAllText(Path.Combine(_nodes.OfType<MarketUnderTest>().First().Options.DataDir, "admin.token")).Trim();

    public async ValueTask DisposeAsync()
    {
        foreach (var node in _nodes.OfType<MarketUnderTest>())
        {
            await node.DisposeAsync();
        }

        await PaidMarket.DropDatabaseAsync(_database);
    }
}
