using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Coinop.Core.Protocol;
using Coinop.Core.Workloads;
using Coinop.Market.Cluster;
using Coinop.Market.Tests.TestProviders;
using Coinop.Market.Tests.Workloads;
using Coinop.Storage.Cluster;
using Coinop.TestKit;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace Coinop.Market.Tests.Cluster;

/// <summary>
/// A provider link its node no longer owns (the provider linked again, at a newer epoch, elsewhere) writes nothing:
/// job results are refused at settlement (<see cref="NodeSafetyTests"/>), and workload reports here.
/// </summary>
public class RevokedLinkTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_revoked_link_cannot_report_usage_or_copy_states_of_the_workloads_it_ran()
    {
        var database = await TestMarket.CreatePostgresDatabaseAsync();
        var connection = new NpgsqlConnectionStringBuilder(PostgresServer.ConnectionString) { Database = database }.ConnectionString;
        // The node never re-reads the links: its old session stays open after the provider linked again elsewhere, so the
        // reports reach the supervisor and only the store's epoch can refuse them.
        await using var market = await MarketUnderTest.StartAsync(o =>
        {
            o.Postgres = connection;
            o.WorkloadStopAfter = TimeSpan.FromMinutes(10);
        }, b => b.Services.Configure<ClusterOptions>(c => c.ViewRefreshInterval = TimeSpan.FromHours(1)), cancellationToken: Ct);
        await using var old = await PlacementClaimTests.WorkloadProviderAsync(market, "revoked", 4, 8192);
        await using var witness = await PlacementClaimTests.WorkloadProviderAsync(market, "witness", 4, 8192);

        var start = old.WaitForAsync<WorkloadStart>(_ => true);
        using var submitted = await market.Http.PostAsJsonAsync("/api/workloads",
            new { command = "sleep", args = new[] { "600" }, cpu = 1, memory_mb = 256, provider = old.ProviderId }, Ct);
        var body = JsonNode.Parse(await submitted.Content.ReadAsStringAsync(Ct));
        Assert.True(submitted.StatusCode == HttpStatusCode.Created, body?.ToJsonString());
        var id = (string)body!["id"]!;
        var copy = await start.WaitAsync(TimeSpan.FromSeconds(30), Ct);

        // The copy runs: its heartbeat makes the workload live.
        var live = old.WaitForAsync<WorkloadAck>(a => a.Seq == 1);
        await old.SendAsync(new WorkloadHeartbeat(1, "incarnation-revoked", [new CopyRef(id, copy.Epoch)], []), Ct);
        await live.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        Assert.Equal(("live", copy.Epoch), await WorkloadAsync(connection, id));

        // The provider links again on another node: epoch 2 there. This node still holds the socket of epoch 1.
        var links = market.App.Services.GetRequiredService<IProviderLinkStore>();
        var moved = await links.ClaimAsync(old.ProviderId, "another-node", "revoked", TimeProvider.System.GetUtcNow(), Ct);
        Assert.True(moved.Epoch > market.Directory.Find(old.ProviderId)!.LinkEpoch);

        // Over the revoked link: usage signed by the provider itself, and the copy's exit.
        var record = new UsageRecord(id, copy.Epoch, 0, 10_000, 1, 1, 0, 10).Sign(old.Key);
        await old.SendAsync(new WorkloadUsage(id, copy.Epoch, record), Ct);
        await old.SendAsync(new WorkloadExited(id, copy.Epoch, 1, false), Ct);

        // The node reads each socket in order: once the link heartbeat after them is answered, both reports are queued for
        // the supervisor, which handles one command at a time, in order: once the witness's heartbeat is answered, both
        // were handled.
        await old.HeartbeatAsync(Ct);
        var seen = witness.WaitForAsync<WorkloadAck>(a => a.Seq == 7);
        await witness.SendAsync(new WorkloadHeartbeat(7, "incarnation-witness", [], []), Ct);
        await seen.WaitAsync(TimeSpan.FromSeconds(30), Ct);

        Assert.Equal(0L, await ScalarAsync(connection, "SELECT count(*) FROM workload_usage WHERE workload_id = @id", id));
        Assert.Equal(("live", copy.Epoch), await WorkloadAsync(connection, id)); // the exit was not taken: the copy is still the one running
    }

    private static async Task<(string State, long Epoch)> WorkloadAsync(string connection, string id)
    {
        await using var c = new NpgsqlConnection(connection);
        await c.OpenAsync(Ct);
        await using var query = new NpgsqlCommand("SELECT state, epoch FROM workloads WHERE id = @id", c);
        query.Parameters.AddWithValue("id", id);
        await using var reader = await query.ExecuteReaderAsync(Ct);
        Assert.True(await reader.ReadAsync(Ct));
        return (reader.GetString(0), reader.GetInt64(1));
    }

    private static async Task<long> ScalarAsync(string connection, string sql, string id)
    {
        await using var c = new NpgsqlConnection(connection);
        await c.OpenAsync(Ct);
        await using var query = new NpgsqlCommand(sql, c);
        query.Parameters.AddWithValue("id", id);
        return Convert.ToInt64(await query.ExecuteScalarAsync(Ct), System.Globalization.CultureInfo.InvariantCulture);
    }
}
