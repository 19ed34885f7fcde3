using System.Net.WebSockets;
using Coinop.Core.Protocol;
using Coinop.Core.Workloads;
using Coinop.Market.Hosting;
using Coinop.Market.Tests.TestProviders;
using Coinop.TestKit;
using Npgsql;

namespace Coinop.Market.Tests.Workloads;

/// <summary>
/// The workload supervisor's queue is bounded per provider (issue 9, item 9): a provider that floods it over a real
/// WebSocket is disconnected, what it queued is dropped unread, and other providers are served.
/// </summary>
[Collection(ExactMetricsCollection.Name)]
public class CommandFloodTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_provider_flooding_the_supervisor_with_reports_is_disconnected_and_not_obeyed()
    {
        var database = await TestMarket.CreatePostgresDatabaseAsync();
        var connection = new NpgsqlConnectionStringBuilder(PostgresServer.ConnectionString) { Database = database }.ConnectionString;
        await using var market = await MarketUnderTest.StartAsync(o => o.Postgres = connection, cancellationToken: Ct);
        var limit = new MarketOptions().ProviderCommandQueueLimit; // the default bound
        await using var flooder = await PlacementClaimTests.WorkloadProviderAsync(market, "flooder", 4, 8192);
        await using var honest = await PlacementClaimTests.WorkloadProviderAsync(market, "honest", 4, 8192);

        // Hold the supervisor on one command (the flooder's first usage record), so everything after it stays queued.
        await using var hold = await SupervisorHold.StartAsync(connection, flooder, Ct);

        // The flood: reports of copies, each one queued for the supervisor, far more than it may hold for one provider.
        var sent = 0;
        try
        {
            for (; sent < limit * 2; sent++)
            {
                await flooder.SendAsync(new WorkloadLost(WorkloadIds.New(), 1, "flood"), Ct);
            }
        }
        catch (Exception ex) when (ex is WebSocketException or ObjectDisposedException)
        {
            // The market closed the socket mid-flood.
        }

        var (status, _) = await flooder.Closed.WaitAsync(TimeSpan.FromSeconds(60), Ct);
        Assert.Equal((WebSocketCloseStatus)CloseCodes.ProtocolError, status);
        Assert.True(sent >= limit, $"closed after {sent} messages, before the bound of {limit}");

        // The supervisor goes on: the honest provider's workload heartbeat, queued behind the whole flood, is answered;
        // by then every report the flooder queued was dropped unread.
        await hold.ReleaseAsync(Ct);
        var ack = honest.WaitForAsync<WorkloadAck>(a => a.Seq == 1);
        await honest.SendAsync(new WorkloadHeartbeat(1, "incarnation-honest", [], []), Ct);
        await ack.WaitAsync(TimeSpan.FromSeconds(60), Ct);

        var metrics = await market.Http.GetStringAsync("/metrics", Ct);
        Assert.Equal(limit, Counter(metrics, "coinop_workloads_provider_commands_dropped_total"));
        Assert.Equal(1, Counter(metrics, "coinop_workloads_providers_flooded_total"));
    }

    private static long Counter(string metrics, string name)
    {
        var line = metrics.Split('\n').FirstOrDefault(l => l.StartsWith(name, StringComparison.Ordinal));
        Assert.True(line is not null, $"no {name} in:\n{metrics[..Math.Min(metrics.Length, 3000)]}");
        return (long)double.Parse(line[(line.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
    }
}
