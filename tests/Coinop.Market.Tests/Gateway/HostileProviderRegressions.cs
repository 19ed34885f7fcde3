using System.Net;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text.Json.Nodes;
using Coinop.Core.Protocol;
using Coinop.Core.Workloads;
using Coinop.Market.Tests.Payments;
using Coinop.Market.Tests.TestProviders;
using Coinop.TestKit;
using static Coinop.Market.Tests.Gateway.HostileFrames;
using static Coinop.Market.Tests.Gateway.HostileLink;

namespace Coinop.Market.Tests.Gateway;

/// <summary>
/// Each failure <see cref="HostileProviderTests"/> found (or would find), kept as a plain case: what a provider says is
/// bounded before the market shows, sums, relays or stores it.
/// </summary>
public class HostileProviderRegressions
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Load_figures_at_the_ends_of_their_types_from_two_providers_leave_every_view_answering_and_are_bounded()
    {
        await using var market = await PaidMarket.StartAsync();
        await using var honest = await HonestAsync(market);
        var key = await BalanceKeyAsync(market);
        await using var high = await HostileAsync(market);
        await using var low = await HostileAsync(market);

        // Two providers claiming int.MaxValue queued jobs each: summed over providers, that overflowed the operator's traffic view (a 500).
        Assert.Null(await SendSettledAsync(high, Frame.Text("huge load", Json(new HeartbeatMessage(
            new LoadFigures(int.MaxValue, int.MaxValue, double.MaxValue, double.MaxValue, double.MaxValue, double.MaxValue))))));
        Assert.Null(await SendSettledAsync(low, Frame.Text("huge load", Json(new HeartbeatMessage(
            new LoadFigures(int.MaxValue, int.MaxValue, -1, double.MinValue, -5, -2))))));

        await AssertHealthyAsync(market, honest, key);
        foreach (var view in (await market.GetJsonAsync("/api/providers")).EnumerateArray())
        {
            var load = view.GetProperty("load");
            Assert.InRange(load.GetProperty("queue_depth").GetInt32(), 0, Coinop.Market.Gateway.LoadCheck.MaxJobs);
            Assert.InRange(load.GetProperty("error_rate").GetDouble(), 0, 1);
            Assert.InRange(load.GetProperty("p50_latency_ms").GetDouble(), 0, Coinop.Market.Gateway.LoadCheck.MaxFigure);
            Assert.InRange(load.GetProperty("tokens_per_second").GetDouble(), 0, Coinop.Market.Gateway.LoadCheck.MaxFigure);
        }
    }

    [Theory]
    [InlineData("{{{ not what a backend sends")]
    [InlineData("{\"choices\":[]} and then some")]
    [InlineData("{\"choices\":[")]
    public async Task A_whole_answer_that_is_not_one_JSON_object_is_a_provider_failure_and_costs_nothing(string output)
    {
        await using var market = await PaidMarket.StartAsync();
        var key = await BalanceKeyAsync(market);
        await using var hostile = await TestProvider.ConnectAsync(market.Url, "hostile", cancellationToken: Ct);
        hostile.Script = async (job, run) =>
        {
            await run.SendAsync(output);
            await run.DoneAsync();
        };
        await hostile.OfferAsync(Ct, 8, new ModelOffer(SoloModel, "vllm", SoloInputMsatPerMtok, SoloOutputMsatPerMtok, 8192, 8));

        // Before: a body that merely started with '{' was relayed as a 200 and billed as the provider claimed.
        using var response = await PostChatAsync(market, key, SoloModel, stream: false);
        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.NotNull(TryParse(body)?["error"]);
        var summary = await market.AssertBalancedAsync();
        Assert.Equal(0, summary.SpentMsat);
        await AssertEarnedNothingAsync(market, [hostile.ProviderId]);
    }

    [Fact]
    public async Task A_job_error_carrying_megabytes_reaches_the_consumer_as_a_short_error()
    {
        await using var market = await PaidMarket.StartAsync();
        var key = await BalanceKeyAsync(market);
        await using var hostile = await TestProvider.ConnectAsync(market.Url, "hostile", cancellationToken: Ct);
        var huge = new string('A', 3 * 1024 * 1024);
        hostile.Script = (job, run) => hostile.SendAsync(new JobError(job.JobId, job.Fence, JobErrorCodes.InvalidRequest, huge, false), Ct);
        await hostile.OfferAsync(Ct, 8, new ModelOffer(SoloModel, "vllm", SoloInputMsatPerMtok, SoloOutputMsatPerMtok, 8192, 8));

        using var refused = await PostChatAsync(market, key, SoloModel, stream: false);
        var body = await refused.Content.ReadAsStringAsync(Ct);
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.True(body.Length < 4096, $"a {body.Length}-character error");

        hostile.Script = (job, run) => hostile.SendAsync(new JobError(job.JobId, job.Fence, huge, huge, false), Ct);
        using var failed = await PostChatAsync(market, key, SoloModel, stream: false);
        body = await failed.Content.ReadAsStringAsync(Ct);
        Assert.Equal(HttpStatusCode.BadGateway, failed.StatusCode);
        Assert.True(body.Length < 4096, $"a {body.Length}-character error");
        await market.AssertBalancedAsync();
    }

    [Theory]
    [InlineData("nul\u0000in the name")]
    [InlineData("sixty-three characters then an emoji straddling the cut .......😀 and more")]
    [InlineData("bell\u0007 and escape\u001b[31m red")]
    public async Task A_provider_name_of_any_unicode_is_admitted_under_a_clean_name_on_postgres(string name)
    {
        var database = await TestMarket.CreatePostgresDatabaseAsync();
        try
        {
            var connection = new Npgsql.NpgsqlConnectionStringBuilder(PostgresServer.ConnectionString) { Database = database }.ConnectionString;
            await using var market = await MarketUnderTest.StartAsync(o => o.Postgres = connection, cancellationToken: Ct);
            await using var provider = await TestProvider.ConnectAsync(market.Url, name, cancellationToken: Ct);

            Assert.NotNull(provider.AuthOk);
            var stored = (await market.Registry.FindAsync(provider.ProviderId, Ct))!.Name;
            Assert.DoesNotContain(stored, c => char.IsControl(c) || char.IsSurrogate(c) && !char.IsSurrogatePair(stored, stored.IndexOf(c)));
            Assert.InRange(stored.Length, 1, 64);
        }
        finally
        {
            await PaidMarket.DropDatabaseAsync(database);
        }
    }

    [Fact]
    public async Task An_enrollment_code_with_a_nul_is_refused_with_4401_on_postgres()
    {
        var database = await TestMarket.CreatePostgresDatabaseAsync();
        try
        {
            var connection = new Npgsql.NpgsqlConnectionStringBuilder(PostgresServer.ConnectionString) { Database = database }.ConnectionString;
            await using var market = await MarketUnderTest.StartAsync(o =>
            {
                o.Postgres = connection;
                o.Enrollment = Coinop.Market.Hosting.EnrollmentMode.Code;
            }, cancellationToken: Ct);

            await using var provider = await TestProvider.ConnectAsync(market.Url, "nul code", enrollmentCode: "CODE\u0000", cancellationToken: Ct);

            Assert.Equal("enrollment_code_unknown", provider.AuthFailed?.Reason);
            Assert.Equal((WebSocketCloseStatus)CloseCodes.AuthFailed, (await provider.Closed.WaitAsync(Ct)).Status);
        }
        finally
        {
            await PaidMarket.DropDatabaseAsync(database);
        }
    }

    [Fact]
    public async Task Nul_and_control_characters_from_a_provider_never_reach_postgres_and_its_reports_are_still_applied()
    {
        var database = await TestMarket.CreatePostgresDatabaseAsync();
        try
        {
            var connection = new Npgsql.NpgsqlConnectionStringBuilder(PostgresServer.ConnectionString) { Database = database }.ConnectionString;
            await using var market = await MarketUnderTest.StartAsync(o =>
            {
                o.Postgres = connection;
                o.WorkloadStopAfter = TimeSpan.FromMinutes(10);
            }, cancellationToken: Ct);

            // Capabilities whose incarnation (stored as the owner of the leases it would hold) carries a NUL.
            await using var nul = await TestProvider.ConnectAsync(market.Url, "nul", cancellationToken: Ct);
            var capabilities = Json(new CapabilitiesMessage([], 8, "test/1", new WorkloadCapacity("bubblewrap", 4, 8192, 20, 5,
                Convert.ToBase64String(new byte[32]), Convert.ToBase64String(new byte[64]), "incarnation\u0000nul")));
            var status = await SendSettledAsync(nul, Frame.Text("capabilities with a NUL", capabilities));
            if (status is null)
            {
                // Taken: then a workload pinned to it must be placed (or refused cleanly), never a 500.
                using var pinned = await market.Http.PostAsJsonAsync("/api/workloads",
                    new { command = "sleep", args = new[] { "600" }, cpu = 1, memory_mb = 256, provider = nul.ProviderId }, Ct);
                Assert.True(pinned.StatusCode is HttpStatusCode.Created or HttpStatusCode.ServiceUnavailable, await pinned.Content.ReadAsStringAsync(Ct));
            }
            else
            {
                Assert.Equal((WebSocketCloseStatus)CloseCodes.ProtocolError, status);
            }

            // A provider holding a copy reports it lost (it could not start) with a NUL in its error text: the report is applied.
            await using var holder = await Workloads.PlacementClaimTests.WorkloadProviderAsync(market, "holder", 4, 8192);
            var started = holder.WaitForAsync<WorkloadStart>(s => s.Role == WorkloadStart.Primary, afterNow: true);
            using var submit = await market.Http.PostAsJsonAsync("/api/workloads",
                new { command = "sleep", args = new[] { "600" }, cpu = 1, memory_mb = 256, provider = holder.ProviderId }, Ct);
            var submitted = JsonNode.Parse(await submit.Content.ReadAsStringAsync(Ct))!;
            Assert.True(submit.StatusCode == HttpStatusCode.Created, submitted.ToJsonString());
            var start = await started.WaitAsync(TimeSpan.FromSeconds(60), Ct);
            Assert.Null(await SendSettledAsync(holder, Frame.Text("lost with a NUL",
                Json(new WorkloadLost(start.WorkloadId, start.Epoch, WorkloadLost.StartFailed + ": exec \u0000 refused")))));
            var ack = holder.WaitForAsync<WorkloadAck>(a => a.Seq == 1);
            await holder.SendAsync(new WorkloadHeartbeat(1, "incarnation-holder", [], []), Ct); // answered after the report was handled
            await ack.WaitAsync(TimeSpan.FromSeconds(60), Ct);

            using var get = new HttpRequestMessage(HttpMethod.Get, $"/api/workloads/{start.WorkloadId}");
            get.Headers.Add(WorkloadOwnerKey.Header, (string)submitted["owner_key"]!);
            using var response = await market.Http.SendAsync(get, Ct);
            var view = JsonNode.Parse(await response.Content.ReadAsStringAsync(Ct))!;
            Assert.Equal("failed", (string?)view["state"]);
            Assert.Contains("start_failed: exec", (string?)view["reason"], StringComparison.Ordinal);
        }
        finally
        {
            await PaidMarket.DropDatabaseAsync(database);
        }
    }
}
