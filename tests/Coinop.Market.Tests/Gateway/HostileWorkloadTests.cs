using System.Net;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;
using Coinop.Core.Protocol;
using Coinop.Core.Workloads;
using Coinop.Market.Tests.Payments;
using Coinop.Market.Tests.TestProviders;
using Coinop.TestKit;
using CsCheck;
using static Coinop.Market.Tests.Gateway.HostileFrames;
using static Coinop.Market.Tests.Gateway.HostileLink;

namespace Coinop.Market.Tests.Gateway;

/// <summary>
/// A hostile provider against a workload copy another provider holds: exits, losses, usage (signed by itself or by the
/// holder), receipts, checkpoints, output and heartbeats claiming the copy, at every epoch around the current one,
/// generated with CsCheck. None of it changes the workload, and the holder's heartbeats still renew its copy.
/// </summary>
public class HostileWorkloadTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private enum Report
    {
        Exited,
        Lost,
        UsageSignedByItself,
        UsageSignedByTheHolder,
        Receipt,
        Checkpoint,
        Output,
        ClaimInHeartbeat,
    }

    private sealed record WorkloadMisdeed(Report Report, int EpochShift);

    [Theory]
    [MemberData(nameof(PaidMarket.Dialects), MemberType = typeof(PaidMarket))]
    public async Task Reports_usage_receipts_checkpoints_and_output_for_a_copy_another_provider_holds_change_nothing(Coinop.Storage.SqlDialect dialect)
    {
        var database = dialect == Coinop.Storage.SqlDialect.Postgres ? await TestMarket.CreatePostgresDatabaseAsync() : null;
        try
        {
            await RunAsync(database is null ? null : new Npgsql.NpgsqlConnectionStringBuilder(PostgresServer.ConnectionString) { Database = database }.ConnectionString,
                database is null ? Iterations / 2 : Iterations / 8);
        }
        finally
        {
            await PaidMarket.DropDatabaseAsync(database);
        }
    }

    private static async Task RunAsync(string? postgres, int iterations)
    {
        await using var market = await MarketUnderTest.StartAsync(o =>
        {
            o.WorkloadStopAfter = TimeSpan.FromMinutes(10);
            o.Postgres = postgres;
        }, cancellationToken: Ct);
        await using var holder = await Workloads.PlacementClaimTests.WorkloadProviderAsync(market, "holder", 4, 8192);
        await using var hostile = await Workloads.PlacementClaimTests.WorkloadProviderAsync(market, "hostile", 4, 8192);
        var started = holder.WaitForAsync<WorkloadStart>(_ => true, afterNow: true);
        using var submit = await market.Http.PostAsJsonAsync("/api/workloads",
            new { command = "sleep", args = new[] { "600" }, cpu = 1, memory_mb = 256, provider = holder.ProviderId }, Ct);
        var submitted = JsonNode.Parse(await submit.Content.ReadAsStringAsync(Ct))!;
        Assert.True(submit.StatusCode == HttpStatusCode.Created, submitted.ToJsonString());
        var ownerKey = (string)submitted["owner_key"]!;
        var start = await started.WaitAsync(TimeSpan.FromSeconds(60), Ct);
        var copy = new CopyRef(start.WorkloadId, start.Epoch);
        var holderSeq = 0L;
        var hostileSeq = 0L;
        await AssertStillHeldAsync();
        var before = await ViewAsync();

        await Gen.Select(Gen.Enum<Report>(), Gen.Int[0, 5], (report, shift) => new WorkloadMisdeed(report, shift)).Array[1, 6].SampleAsync(async misdeeds =>
        {
            foreach (var misdeed in misdeeds)
            {
                foreach (var frame in WorkloadFrames(misdeed, copy, hostile, holder))
                {
                    Assert.True(await SendSettledAsync(hostile, frame) is null, $"closed by a well-formed report: {frame}");
                }
            }

            // The supervisor handles one provider's messages in order: the answer to this heartbeat comes after all of them.
            var next = ++hostileSeq;
            var ack = hostile.WaitForAsync<WorkloadAck>(a => a.Seq == next);
            await hostile.SendAsync(new WorkloadHeartbeat(next, "incarnation-hostile", [], []), Ct);
            Assert.DoesNotContain(copy, (await ack.WaitAsync(TimeSpan.FromSeconds(60), Ct)).Renewed);
            await AssertStillHeldAsync();

            var view = await ViewAsync();
            Assert.Equal((string?)before["state"], (string?)view["state"]);
            Assert.Equal(holder.ProviderId, (string?)view["provider"]);
            Assert.Equal(start.Epoch, (long)view["epoch"]!);
            Assert.Empty(view["usage"]!.AsArray());
            Assert.True(view["checkpoint"] is null, view.ToJsonString());
            Assert.True(view["access"] is null, view.ToJsonString());
            Assert.Empty(view["receipts"]?.AsArray() ?? []);
            using var logs = await SendAsync(HttpMethod.Get, $"/api/workloads/{copy.WorkloadId}/logs");
            var entries = JsonNode.Parse(await logs.Content.ReadAsStringAsync(Ct))!["entries"]!.AsArray();
            Assert.Empty(entries);
        }, iter: iterations, threads: 1);

        Assert.DoesNotContain(holder.Received, m => m is WorkloadStop);

        // The copy is still the holder's: its heartbeat renews it.
        async Task AssertStillHeldAsync()
        {
            var next = ++holderSeq;
            var ack = holder.WaitForAsync<WorkloadAck>(a => a.Seq == next);
            await holder.SendAsync(new WorkloadHeartbeat(next, "incarnation-holder", [copy], []), Ct);
            Assert.Contains(copy, (await ack.WaitAsync(TimeSpan.FromSeconds(60), Ct)).Renewed);
        }

        async Task<JsonNode> ViewAsync()
        {
            using var response = await SendAsync(HttpMethod.Get, $"/api/workloads/{copy.WorkloadId}");
            var text = await response.Content.ReadAsStringAsync(Ct);
            Assert.True(response.StatusCode == HttpStatusCode.OK, text);
            return JsonNode.Parse(text)!;
        }

        async Task<HttpResponseMessage> SendAsync(HttpMethod method, string path)
        {
            using var request = new HttpRequestMessage(method, path);
            request.Headers.Add(WorkloadOwnerKey.Header, ownerKey);
            var response = await market.Http.SendAsync(request, Ct);
            await response.Content.LoadIntoBufferAsync(Ct);
            return response;
        }
    }

    private static IEnumerable<Frame> WorkloadFrames(WorkloadMisdeed misdeed, CopyRef copy, TestProvider hostile, TestProvider holder)
    {
        var id = copy.WorkloadId;
        var epoch = misdeed.EpochShift switch
        {
            0 => copy.Epoch,
            1 => copy.Epoch + 1,
            2 => copy.Epoch - 1,
            3 => 0,
            4 => long.MaxValue,
            _ => long.MinValue,
        };
        var record = new UsageRecord(id, epoch, 0, 10_000, 4, 1024, 1 << 20, 10);
        switch (misdeed.Report)
        {
            case Report.Exited:
                yield return Frame.Text("exited", Json(new WorkloadExited(id, epoch, 1, OomKilled: true)));
                break;
            case Report.Lost:
                yield return Frame.Text("lost", Json(new WorkloadLost(id, epoch, WorkloadLost.StoppedByRule)));
                break;
            case Report.UsageSignedByItself:
                yield return Frame.Text("usage signed by itself", Json(new WorkloadUsage(id, epoch, record.Sign(hostile.Key))));
                break;
            case Report.UsageSignedByTheHolder:
                yield return Frame.Text("usage signed by the holder", Json(new WorkloadUsage(id, epoch, record.Sign(holder.Key))));
                break;
            case Report.Receipt:
                yield return Frame.Text("receipt", Json(new WorkloadReceipt(id, epoch, Convert.ToBase64String(new byte[80]))));
                break;
            case Report.Checkpoint:
                var data = Encoding.UTF8.GetBytes("a checkpoint the hostile provider made up");
                var chunk = new byte[ChunkFrame.HeaderSize + data.Length];
                ChunkFrame.WriteHeader(chunk, ChunkFrame.KindCheckpointChunk, Guid.ParseExact(id, "N"), epoch);
                data.CopyTo(chunk, ChunkFrame.HeaderSize);
                yield return new Frame("checkpoint bytes", WebSocketMessageType.Binary, chunk);
                yield return Frame.Text("checkpoint end", Json(new WorkloadCheckpoint(id, epoch, data.Length,
                    Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(data)))));
                break;
            case Report.Output:
                var line = Encoding.UTF8.GetBytes("PWNED\n");
                var log = new byte[ChunkFrame.HeaderSize + 1 + line.Length];
                ChunkFrame.WriteHeader(log, ChunkFrame.KindWorkloadLog, Guid.ParseExact(id, "N"), epoch);
                log[ChunkFrame.HeaderSize] = 1;
                line.CopyTo(log, ChunkFrame.HeaderSize + 1);
                yield return new Frame("output", WebSocketMessageType.Binary, log);
                break;
            default:
                yield return Frame.Text("claims the copy", Json(new WorkloadHeartbeat(long.MaxValue - epoch % 1000, "incarnation-hostile", [new CopyRef(id, epoch)], [id])));
                break;
        }
    }
}
