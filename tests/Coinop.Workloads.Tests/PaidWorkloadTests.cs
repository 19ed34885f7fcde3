using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Coinop.Ecash.PaymentRequests;
using Coinop.Market.Hosting;
using Coinop.Storage;
using Coinop.TestKit;
using Coinop.Wallet;
using Coinop.Workloads.Tests.Infrastructure;

namespace Coinop.Workloads.Tests;

/// <summary>
/// Workloads on a paid market, with real provider processes: paid at submit and top-up like requests, charged per
/// second to the providers that host or reserve for them, refunded what they did not use — with the ledger's equations
/// checked after every test, and across a kill -9 of the market.
/// </summary>
public sealed class PaidWorkloadTests
{
    /// <summary>Providers ask 5 000 msat per core-second and nothing for memory: a 0.2-core workload costs 1 sat a second.</summary>
    internal static readonly string[] OneSatPerSecond = ["--workload-price", "5000:0"];

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<SqlDialect> Dialects => [SqlDialect.Sqlite, SqlDialect.Postgres];

    internal static void Paid(MarketOptions o)
    {
        o.Free = false;
        o.WorkloadSettleInterval = TimeSpan.FromSeconds(0.5);
    }

    [Theory]
    [MemberData(nameof(Dialects))]
    public async Task A_workload_is_paid_after_a_402_topped_up_and_cancelled_with_a_refund_of_what_it_did_not_use(SqlDialect dialect)
    {
        await using var cluster = await WorkloadCluster.StartAsync(providers: 1, configure: Paid, dialect: dialect, providerArgs: OneSatPerSecond);
        var workload = TestWorkload.Forever();
        using var watch = workload.Watch();
        try
        {
            var wallet = await WalletAsync(cluster, 100);
            var request = workload.Request(new { duration_seconds = 20 });

            // No payment: 402 with a payment request for what 20 s cost.
            using (var unpaid = await PostAsync(cluster, "/api/workloads", request))
            {
                Assert.Equal(HttpStatusCode.PaymentRequired, unpaid.StatusCode);
                Assert.Equal("payment_required", (string?)(await BodyAsync(unpaid))["error"]!["code"]);
                var asked = PaymentRequest.Decode(unpaid.Headers.GetValues("X-Cashu").Single());
                Assert.Equal((20UL, "sat"), (asked.Amount!.Value, asked.Unit!));
                Assert.Contains(cluster.Url + "/mint", asked.Mints!);
            }

            // A malformed token is a 400 with its Cashu code; one worth too little a 402, and it stays the consumer's.
            using (var bad = await PostAsync(cluster, "/api/workloads", request, cashu: "cashuBnotatoken"))
            {
                Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
                var error = (await BodyAsync(bad))["error"]!;
                Assert.Equal(("invalid_payment", "0"), ((string?)error["type"], (string?)error["code"]));
            }

            var small = await wallet.SendAsync(19, cluster.Url + "/mint", Ct);
            using (var tooSmall = await PostAsync(cluster, "/api/workloads", request, cashu: small))
            {
                Assert.Equal(HttpStatusCode.PaymentRequired, tooSmall.StatusCode);
            }

            Assert.Equal(19UL, await wallet.ReceiveAsync(small, Ct));

            var token = await wallet.SendAsync(20, cluster.Url + "/mint", Ct);
            var submitted = await SubmitPaidAsync(cluster, request, token);
            var id = (string)submitted["id"]!;
            Assert.Equal(20_000, (long)submitted["paid_msat"]!);
            Assert.Equal(TimeSpan.FromSeconds(20), Time(submitted["paid_until"]) - Time(submitted["created_at"]));
            await cluster.WaitForStateAsync(id, "live");
            await watch.WaitForEpochAsync(1);
            await cluster.WaitForAsync(id, w => (long?)w["spent_msat"] > 0, "a first settlement");

            // A top-up is paid the same way and extends the lease by what it paid ÷ the rate.
            using (var unpaidTopUp = await PostAsync(cluster, $"/api/workloads/{id}/topup", new { duration_seconds = 10 }))
            {
                Assert.Equal(HttpStatusCode.PaymentRequired, unpaidTopUp.StatusCode);
                Assert.Equal(10UL, PaymentRequest.Decode(unpaidTopUp.Headers.GetValues("X-Cashu").Single()).Amount);
            }

            using (var topUp = await PostAsync(cluster, $"/api/workloads/{id}/topup", new { duration_seconds = 10 }, cashu: await wallet.SendAsync(10, cluster.Url + "/mint", Ct)))
            {
                Assert.Equal(HttpStatusCode.OK, topUp.StatusCode);
                var extended = await BodyAsync(topUp);
                Assert.Equal(TimeSpan.FromSeconds(30), Time(extended["paid_until"]) - Time(extended["created_at"]));
                Assert.Equal(30_000, (long)extended["paid_msat"]!);
            }

            // Only the credential that paid may cancel.
            using (var anonymous = await SendAsync(cluster, HttpMethod.Delete, $"/api/workloads/{id}", null))
            {
                Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
            }

            using (var stranger = await SendAsync(cluster, HttpMethod.Delete, $"/api/workloads/{id}", null, bearer: await wallet.SendAsync(1, cluster.Url + "/mint", Ct)))
            {
                Assert.Equal(HttpStatusCode.Forbidden, stranger.StatusCode);
            }

            JsonObject cancelled;
            string refundHeader;
            using (var cancel = await SendAsync(cluster, HttpMethod.Delete, $"/api/workloads/{id}", null, bearer: token))
            {
                Assert.Equal(HttpStatusCode.OK, cancel.StatusCode);
                refundHeader = cancel.Headers.GetValues("X-Cashu").Single();
                cancelled = await BodyAsync(cancel);
            }

            Assert.Equal("cancelled", (string?)cancelled["state"]);
            await watch.WaitForNoneAsync();
            var spent = (long)cancelled["spent_msat"]!;
            var refund = cancelled["refund"]!;
            // The refund is what was paid and not consumed, in whole sats; consumed time is at most 1 msat a millisecond.
            Assert.Equal((30_000 - spent) / 1000 * 1000, (long)refund["refund_msat"]!);
            Assert.Equal(refundHeader, (string?)refund["token"]);
            // The times shown are whole milliseconds and the charge is rounded up to the msat: at most one more than their difference.
            Assert.InRange(spent, 1, (long)(Time(cancelled["history"]!.AsArray()[^1]!["at"]) - Time(cancelled["created_at"])).TotalMilliseconds + 1);
            Assert.Equal((ulong)((30_000 - spent) / 1000), await wallet.ReceiveAsync(refundHeader, Ct));
            // Anyone may look; only the payer sees the token.
            Assert.Null((await cluster.GetAsync(id))["refund"]!["token"]);

            var s = await cluster.AssertBalancedAsync();
            Assert.Equal((30_000L, 30_000 - (30_000 - spent) / 1000 * 1000, (30_000 - spent) / 1000 * 1000, 0L, 0L),
                (s.ReceivedMsat, s.SpentMsat, s.RefundedMsat, s.BalancesMsat, s.HeldMsat));
            var earned = (await cluster.EarningsAsync(cluster.Providers[0].Id)).EarnedMsat;
            Assert.InRange(earned, 1, spent * 9 / 10); // each span's share is rounded down
            watch.AssertSingleWriter();
        }
        catch (Exception ex) when (ex is not Xunit.Sdk.XunitException)
        {
            throw new InvalidOperationException(ex.Message + "\n" + cluster.Diagnostics(), ex);
        }
    }

    [Theory]
    [MemberData(nameof(Dialects))]
    public async Task A_workload_that_ends_early_keeps_its_refund_for_the_payer_and_an_expired_lease_is_charged_in_full(SqlDialect dialect)
    {
        await using var cluster = await WorkloadCluster.StartAsync(providers: 1, configure: Paid, dialect: dialect, providerArgs: OneSatPerSecond);
        var early = new TestWorkload("echo done early; sleep 1");
        var expiring = TestWorkload.Forever();
        using var earlyWatch = early.Watch();
        using var expiryWatch = expiring.Watch();
        try
        {
            var wallet = await WalletAsync(cluster, 100);
            var token = await wallet.SendAsync(30, cluster.Url + "/mint", Ct);
            var earlyId = (string)(await SubmitPaidAsync(cluster, early.Request(new { duration_seconds = 30 }), token))["id"]!;

            // Paid from a balance: it is charged exactly what the duration costs, and the lease is exactly that long.
            using var created = await cluster.Http.PostAsJsonAsync(cluster.Url + "/v1/balance/create", new { token = await wallet.SendAsync(10, cluster.Url + "/mint", Ct) }, Ct);
            var key = (string)(await BodyAsync(created))["api_key"]!;
            using var byBalance = await PostAsync(cluster, "/api/workloads", expiring.Request(new { duration_seconds = 3 }), bearer: key);
            Assert.Equal(HttpStatusCode.Created, byBalance.StatusCode);
            var expiringId = (string)(await BodyAsync(byBalance))["id"]!;

            // Its refund is there once its last span is settled, a moment after it ended.
            var finished = await cluster.WaitForAsync(earlyId, w => w["refund"] is JsonObject, "completed and settled");
            Assert.Equal(("completed", "exited"), ((string?)finished["state"], (string?)finished["reason"]));
            using (var anonymous = await SendAsync(cluster, HttpMethod.Get, $"/api/workloads/{earlyId}/refund", null))
            {
                Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
            }

            JsonObject refund;
            using (var collect = await SendAsync(cluster, HttpMethod.Get, $"/api/workloads/{earlyId}/refund", null, bearer: token))
            {
                Assert.Equal(HttpStatusCode.OK, collect.StatusCode);
                refund = await BodyAsync(collect);
            }

            var spentEarly = (long)(await cluster.GetAsync(earlyId))["spent_msat"]!;
            Assert.Equal((30_000 - spentEarly) / 1000 * 1000, (long)refund["refund_msat"]!);
            Assert.True(spentEarly < 30_000 - 1000, $"a copy that ran about a second was charged {spentEarly} msat");
            Assert.Equal((ulong)((30_000 - spentEarly) / 1000), await wallet.ReceiveAsync((string)refund["token"]!, Ct));

            var expired = await cluster.WaitForAsync(expiringId, w => w["refund"] is JsonObject, "completed and settled");
            Assert.Equal(("completed", "lease_expired"), ((string?)expired["state"], (string?)expired["reason"]));
            await expiryWatch.WaitForNoneAsync();
            // The provider held it for all the time paid for: charged in full, to the msat, and nothing to give back.
            Assert.Equal((3_000L, 3_000L, 0L), ((long)expired["paid_msat"]!, (long)expired["spent_msat"]!, (long)expired["refund"]!["refund_msat"]!));
            using (var info = await SendAsync(cluster, HttpMethod.Get, "/v1/balance/info", null, bearer: key))
            {
                Assert.Equal(7_000, (long)(await BodyAsync(info))["balance_msat"]!);
            }

            var s = await cluster.AssertBalancedAsync();
            Assert.Equal((40_000L, 7_000L, 0L), (s.ReceivedMsat, s.BalancesMsat, s.HeldMsat));
            Assert.Equal(s.ReceivedMsat - s.BalancesMsat - s.RefundedMsat, s.SpentMsat);
            earlyWatch.AssertSingleWriter();
            expiryWatch.AssertSingleWriter();
        }
        catch (Exception ex) when (ex is not Xunit.Sdk.XunitException)
        {
            throw new InvalidOperationException(ex.Message + "\n" + cluster.Diagnostics(), ex);
        }
    }

    [Fact]
    public async Task A_standby_is_paid_for_its_reserved_capacity_and_a_lost_primary_stops_earning()
    {
        await using var cluster = await WorkloadCluster.StartAsync(providers: 2, configure: Paid, providerArgs: OneSatPerSecond);
        var (a, b) = (cluster.Providers[0], cluster.Providers[1]);
        var workload = TestWorkload.Forever();
        using var watch = workload.Watch();
        try
        {
            var wallet = await WalletAsync(cluster, 200);
            // The copy and the standby both cost 1 sat a second: 60 s are 120 sat.
            var token = await wallet.SendAsync(120, cluster.Url + "/mint", Ct);
            var id = (string)(await SubmitPaidAsync(cluster, workload.Request(new { duration_seconds = 60, standbys = 1, provider = a.Name }), token))["id"]!;
            Assert.Equal(2_000m, (decimal)(await cluster.GetAsync(id))["rate_msat_per_second"]!);
            await cluster.WaitForStateAsync(id, "live", a.Id, epoch: 1);
            await watch.WaitForEpochAsync(1);
            await Eventually.WaitAsync<long?>(async () => (await cluster.EarningsAsync(b.Id)).EarnedMsat, e => e > 0, "the standby earning", TimeSpan.FromSeconds(30), Ct);
            Assert.Empty((await cluster.SummaryAsync()).Imbalances());

            a.Process.KillHard();
            await cluster.WaitForStateAsync(id, "live", b.Id, epoch: 2);
            var lostAt = (await cluster.EarningsAsync(a.Id)).EarnedMsat;
            var promotedAt = (await cluster.EarningsAsync(b.Id)).EarnedMsat;
            await Eventually.WaitAsync<long?>(async () => (await cluster.EarningsAsync(b.Id)).EarnedMsat, e => e > promotedAt + 1_000, "the promoted standby earning on",
                TimeSpan.FromSeconds(30), Ct);
            Assert.Equal(lostAt, (await cluster.EarningsAsync(a.Id)).EarnedMsat); // nothing more for the lost primary

            using var cancel = await SendAsync(cluster, HttpMethod.Delete, $"/api/workloads/{id}", null, bearer: token);
            var cancelled = await BodyAsync(cancel);
            var spent = (long)cancelled["spent_msat"]!;
            var (earnedA, earnedB) = ((await cluster.EarningsAsync(a.Id)).EarnedMsat, (await cluster.EarningsAsync(b.Id)).EarnedMsat);
            Assert.True(earnedA > 0 && earnedB > earnedA, $"the copy earned {earnedA}, the standby then copy {earnedB}");
            Assert.True(earnedA + earnedB <= spent * 9 / 10 && earnedA + earnedB >= spent * 9 / 10 - 200, $"{earnedA} + {earnedB} of {spent} spent");
            // After the promotion only one provider served: the time left was charged at one sat a second, and the rest came back.
            Assert.Equal((120_000 - spent) / 1000 * 1000, (long)cancelled["refund"]!["refund_msat"]!);
            await cluster.AssertBalancedAsync();
            watch.AssertSingleWriter(minimumSeen: 2);
        }
        catch (Exception ex) when (ex is not Xunit.Sdk.XunitException)
        {
            throw new InvalidOperationException(ex.Message + "\n" + cluster.Diagnostics(), ex);
        }
    }

    [Theory]
    [MemberData(nameof(Dialects))]
    public async Task A_market_killed_while_paid_workloads_run_restarts_with_its_books_balanced_and_keeps_settling(SqlDialect dialect)
    {
        // Copies outlive a market restart: providers stop a cut-off copy only after 20 s without the market.
        await using var cluster = await WorkloadCluster.StartAsync(providers: 2, dialect: dialect, marketProcess: true, providerArgs: OneSatPerSecond, configure: o =>
        {
            Paid(o);
            (o.HeartbeatMinTtl, o.HeartbeatGrace, o.WorkloadStopAfter) = (TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(20));
        });
        var replicated = TestWorkload.Forever();
        var single = TestWorkload.Forever();
        using var replicatedWatch = replicated.Watch();
        using var singleWatch = single.Watch();
        try
        {
            var wallet = await WalletAsync(cluster, 1000);
            var replicatedToken = await wallet.SendAsync(600, cluster.Url + "/mint", Ct);
            var singleToken = await wallet.SendAsync(300, cluster.Url + "/mint", Ct);
            var replicatedId = (string)(await SubmitPaidAsync(cluster, replicated.Request(new { duration_seconds = 300, standbys = 1 }), replicatedToken))["id"]!;
            var singleId = (string)(await SubmitPaidAsync(cluster, single.Request(new { duration_seconds = 300 }), singleToken))["id"]!;
            await replicatedWatch.WaitForEpochAsync(1);
            await singleWatch.WaitForEpochAsync(1);
            var spentBefore = (long)(await cluster.WaitForAsync(singleId, w => (long?)w["spent_msat"] > 0, "a settlement"))["spent_msat"]!;
            await cluster.WaitForAsync(replicatedId, w => (long?)w["spent_msat"] > 0, "a settlement");

            await cluster.KillAndRestartMarketAsync();

            // At once, before anything else runs: the books balance, the workloads' money is still held.
            var restarted = await cluster.AssertBalancedAsync();
            Assert.Equal(900_000, restarted.ReceivedMsat);
            Assert.True(restarted.HeldMsat > 0 && restarted.HeldMsat < 900_000, $"held {restarted.HeldMsat}");
            foreach (var provider in cluster.Providers)
            {
                await cluster.WaitForProviderAsync(provider);
            }

            // Settlement continues where it stopped, and the copies that kept running are the same ones.
            var single2 = await cluster.WaitForAsync(singleId, w => (long?)w["spent_msat"] > spentBefore + 2_000 && (string?)w["state"] == "live", "settling after the restart");
            Assert.Equal(1, (long)single2["epoch"]!);
            Assert.Equal(1, (long)(await cluster.GetAsync(replicatedId))["epoch"]!);

            long refunded = 0;
            foreach (var (id, token, paid) in new[] { (replicatedId, replicatedToken, 600_000L), (singleId, singleToken, 300_000L) })
            {
                using var cancel = await SendAsync(cluster, HttpMethod.Delete, $"/api/workloads/{id}", null, bearer: token);
                Assert.Equal(HttpStatusCode.OK, cancel.StatusCode);
                var cancelled = await BodyAsync(cancel);
                var refund = (long)cancelled["refund"]!["refund_msat"]!;
                Assert.Equal((paid - (long)cancelled["spent_msat"]!) / 1000 * 1000, refund);
                Assert.Equal((ulong)(refund / 1000), await wallet.ReceiveAsync(cancel.Headers.GetValues("X-Cashu").Single(), Ct));
                refunded += refund;
            }

            var s = await cluster.AssertBalancedAsync();
            Assert.Equal((900_000L, refunded, 900_000 - refunded, 0L), (s.ReceivedMsat, s.RefundedMsat, s.SpentMsat, s.HeldMsat));
            replicatedWatch.AssertSingleWriter();
            singleWatch.AssertSingleWriter();
        }
        catch (Exception ex) when (ex is not Xunit.Sdk.XunitException)
        {
            throw new InvalidOperationException(ex.Message + "\n" + cluster.Diagnostics(), ex);
        }
        catch (Xunit.Sdk.XunitException)
        {
            // An assertion's message carries no process output; this test's failures under load were undiagnosable without it.
            TestContext.Current.TestOutputHelper?.WriteLine(cluster.Diagnostics());
            throw;
        }
    }

    [Fact]
    public async Task A_workload_paid_with_another_accepted_mints_ecash_is_refunded_in_that_mints_ecash()
    {
        await using var other = await WorkloadCluster.StartAsync(providers: 0, configure: Paid); // its mint is the consumer's
        await using var cluster = await WorkloadCluster.StartAsync(providers: 1, configure: o =>
        {
            Paid(o);
            o.AcceptMints = [other.Url + "/mint"];
        }, providerArgs: OneSatPerSecond);
        var workload = TestWorkload.Forever();
        using var watch = workload.Watch();
        try
        {
            var wallet = await WalletAsync(other, 100);
            var token = await wallet.SendAsync(40, other.Url + "/mint", Ct);
            var id = (string)(await SubmitPaidAsync(cluster, workload.Request(new { duration_seconds = 20 }), token))["id"]!;
            await cluster.WaitForStateAsync(id, "live");
            await cluster.WaitForAsync(id, w => (long?)w["spent_msat"] > 0, "a first settlement");

            // A top-up in another mint's ecash (here the market's own) is refused: the refund is owed in one mint.
            var ours = await WalletAsync(cluster, 10, "ours");
            var oursToken = await ours.SendAsync(5, cluster.Url + "/mint", Ct);
            using (var mixed = await PostAsync(cluster, $"/api/workloads/{id}/topup", new { duration_seconds = 5 }, cashu: oursToken))
            {
                Assert.Equal(HttpStatusCode.BadRequest, mixed.StatusCode);
                Assert.Contains("paid in ecash of " + other.Url + "/mint", (string?)(await BodyAsync(mixed))["error"]!["message"], StringComparison.Ordinal);
            }

            Assert.Equal(5UL, await ours.ReceiveAsync(oursToken, Ct)); // untouched

            using var cancel = await SendAsync(cluster, HttpMethod.Delete, $"/api/workloads/{id}", null, bearer: token);
            Assert.Equal(HttpStatusCode.OK, cancel.StatusCode);
            var refund = cancel.Headers.GetValues("X-Cashu").Single();
            Assert.Equal(other.Url + "/mint", Coinop.Ecash.Tokens.TokenCodec.Decode(refund).Mint); // the payer's mint, never the market's
            var refundMsat = (long)(await BodyAsync(cancel))["refund"]!["refund_msat"]!;
            Assert.InRange(refundMsat, 1_000, 39_000);
            Assert.Equal((ulong)(refundMsat / 1000), await wallet.ReceiveAsync(refund, Ct));

            var s = await cluster.AssertBalancedAsync();
            Assert.Equal((40_000L, refundMsat, 0L), (s.ReceivedMsat, s.RefundedMsat, s.HeldMsat));
            await watch.WaitForNoneAsync();
        }
        catch (Exception ex) when (ex is not Xunit.Sdk.XunitException)
        {
            throw new InvalidOperationException(ex.Message + "\n" + cluster.Diagnostics(), ex);
        }
    }

    /// <summary>A wallet in the cluster's directory holding <paramref name="sats"/> of the market's ecash.</summary>
    internal static async Task<CashuWallet> WalletAsync(WorkloadCluster cluster, ulong sats, string name = "wallet")
    {
        var wallet = await CashuWallet.OpenAsync(Path.Combine(cluster.DataDir, name), cluster.Http, TimeProvider.System, Ct);
        await wallet.FundAsync(cluster.Url, sats, TimeSpan.FromSeconds(30), Ct);
        return wallet;
    }

    private static async Task<JsonObject> SubmitPaidAsync(WorkloadCluster cluster, JsonObject request, string token)
    {
        using var response = await PostAsync(cluster, "/api/workloads", request, cashu: token);
        var body = await BodyAsync(response);
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"a paid submit answered {(int)response.StatusCode}: {body}");
        return body;
    }

    private static Task<HttpResponseMessage> PostAsync(WorkloadCluster cluster, string path, object body, string? cashu = null, string? bearer = null) =>
        SendAsync(cluster, HttpMethod.Post, path, JsonContent.Create(body), cashu, bearer);

    private static async Task<HttpResponseMessage> SendAsync(WorkloadCluster cluster, HttpMethod method, string path, HttpContent? body, string? cashu = null, string? bearer = null)
    {
        using var request = new HttpRequestMessage(method, cluster.Url + path) { Content = body };
        if (cashu is not null)
        {
            request.Headers.Add("X-Cashu", cashu);
        }

        if (bearer is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        }

        var response = await cluster.Http.SendAsync(request, Ct);
        await response.Content.LoadIntoBufferAsync(Ct);
        return response;
    }

    private static async Task<JsonObject> BodyAsync(HttpResponseMessage response) => JsonNode.Parse(await response.Content.ReadAsStringAsync(Ct))!.AsObject();

    private static DateTimeOffset Time(JsonNode? node) => DateTimeOffset.Parse((string)node!, System.Globalization.CultureInfo.InvariantCulture);
}
