using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Coinop.Core.Protocol;
using Coinop.Core.Workloads;
using Coinop.Market.Tests.TestProviders;
using Coinop.TestKit;

namespace Coinop.Market.Tests.Workloads;

/// <summary>
/// A consumer's workload input that the market used to accept only for it to fail later (a 500, or a copy no provider
/// can start): each is a real request to a real market on loopback, beside a provider that speaks the real protocol.
/// </summary>
public class WorkloadAttackTests
{
    private const string OwnerKey = "attacker-owner-key-0123456789abcdef";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static Task<MarketUnderTest> MarketAsync() =>
        MarketUnderTest.StartAsync(o => o.WorkloadStopAfter = TimeSpan.FromMinutes(10), cancellationToken: Ct);

    /// <summary>Submits a ten-minute workload and has <paramref name="provider"/> start its first copy and hold its lease.</summary>
    private static async Task<string> CopyRunningAsync(MarketUnderTest market, TestProvider provider)
    {
        var (status, submitted) = await SendAsync(market, HttpMethod.Post, "/api/workloads", new { command = "sleep", args = new[] { "600" }, duration_seconds = 600 });
        Assert.True(status == HttpStatusCode.Created, submitted?.ToJsonString());
        var id = (string)submitted!["id"]!;
        await provider.WaitForAsync<WorkloadStart>(s => s.WorkloadId == id);
        await provider.SendAsync(new WorkloadHeartbeat(1, "incarnation-p", [new CopyRef(id, 1)], []), Ct);
        await provider.WaitForAsync<WorkloadAck>(a => a.Seq == 1 && a.Renewed.Any(r => r.WorkloadId == id && r.Epoch == 1));
        return id;
    }

    private static async Task<(HttpStatusCode Status, JsonNode? Body)> SendAsync(MarketUnderTest market, HttpMethod method, string path, object? body)
    {
        using var request = new HttpRequestMessage(method, path) { Content = body is null ? null : JsonContent.Create(body) };
        request.Headers.Add("X-Coinop-Owner-Key", OwnerKey);
        using var response = await market.Http.SendAsync(request, Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True((int)response.StatusCode < 500, $"{method} {path} answered {(int)response.StatusCode}: {text}");
        return (response.StatusCode, JsonNode.Parse(text));
    }

    /// <summary>
    /// Top-ups are free on a free market (and nearly so at a provider's zero rate), each up to ten years: about 800 of
    /// them pushed the lease past DateTimeOffset's year 9999, and the machine's addition threw (a 500 from the top-up).
    /// </summary>
    [Fact]
    public async Task Top_ups_that_would_push_the_lease_past_any_date_are_refused_not_a_500()
    {
        await using var market = await MarketAsync();
        await using var provider = await PlacementClaimTests.WorkloadProviderAsync(market, "p", 4, 8192);
        var (status, submitted) = await SendAsync(market, HttpMethod.Post, "/api/workloads", new { command = "sleep", args = new[] { "600" }, duration_seconds = 60 });
        Assert.True(status == HttpStatusCode.Created, submitted?.ToJsonString());
        var id = (string)submitted!["id"]!;

        var refused = false;
        for (var i = 0; i < 1_000 && !refused; i++)
        {
            var (topped, body) = await SendAsync(market, HttpMethod.Post, $"/api/workloads/{id}/topup", new { duration_seconds = 315_360_000 });
            if (topped != HttpStatusCode.OK)
            {
                Assert.Equal(HttpStatusCode.Conflict, topped);
                Assert.Equal("not_extended", (string?)body!["error"]!["code"]);
                refused = true;
            }
        }

        Assert.True(refused, "a thousand ten-year top-ups were all accepted");
        var (shown, view) = await SendAsync(market, HttpMethod.Get, "/api/workloads/" + id, null);
        Assert.Equal(HttpStatusCode.OK, shown);
        Assert.DoesNotContain((string?)view!["state"], new[] { "failed", "cancelled", "completed" });
    }

    /// <summary>
    /// The market took any CPU above zero while every provider refuses a copy of under 0.01 core: the workload was
    /// placed, paid for and then failed to start everywhere. Bad input is a 400 at submit.
    /// </summary>
    [Theory]
    [InlineData(0.005)]
    [InlineData(1e-9)]
    public async Task A_cpu_no_provider_can_start_is_a_400_at_submit(double cpu)
    {
        await using var market = await MarketAsync();
        await using var provider = await PlacementClaimTests.WorkloadProviderAsync(market, "p", 4, 8192);

        var (status, body) = await SendAsync(market, HttpMethod.Post, "/api/workloads", new { command = "sleep", args = new[] { "600" }, cpu, duration_seconds = 60 });

        Assert.True(status == HttpStatusCode.BadRequest, body?.ToJsonString());
        Assert.Equal("invalid_workload", (string?)body!["error"]!["code"]);
    }

    /// <summary>
    /// The provider holding a copy's lease signs usage for time that has not come (a day ahead) or that no date holds (past
    /// the year 9999, before 1970): the market stored all of it, and the consumer's <c>workload verify</c> then threw
    /// printing those windows. Only a window that has passed (within a minute of the market's clock) is kept.
    /// </summary>
    [Fact]
    public async Task Usage_signed_for_time_that_has_not_come_or_cannot_be_is_not_kept()
    {
        await using var market = await MarketAsync();
        await using var provider = await PlacementClaimTests.WorkloadProviderAsync(market, "p", 4, 8192);
        var id = await CopyRunningAsync(market, provider);

        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var day = (long)TimeSpan.FromDays(1).TotalMilliseconds;
        (long Start, long End)[] hostile = [(now + day, now + day + 10_000), (now, UsageRecord.MaxUnixMs + 1), (now, long.MaxValue), (-10_000, 0), (long.MinValue, now)];
        foreach (var (start, end) in hostile)
        {
            await provider.SendAsync(new WorkloadUsage(id, 1, new UsageRecord(id, 1, start, end, 1, 1, 0, 10).Sign(provider.Key)), Ct);
        }

        var honest = new UsageRecord(id, 1, now - 10_000, now, 1, 1, 0, 10).Sign(provider.Key);
        await provider.SendAsync(new WorkloadUsage(id, 1, honest), Ct);

        // The supervisor takes a provider's messages in order: once the honest record is kept, the others were judged.
        var usage = await Eventually.WaitAsync(async () => (await SendAsync(market, HttpMethod.Get, "/api/workloads/" + id, null)).Body!["usage"]!.AsArray(),
            u => u!.Count > 0, "the honest usage record", cancellationToken: Ct);
        Assert.Equal(honest.Payload, (string?)Assert.Single(usage)!["payload"]);
    }

    /// <summary>
    /// The provider holding the copy signs two contiguous windows of long.MaxValue network bytes each (its own words;
    /// the market keeps them). <c>workload status</c> and <c>workload verify</c> summed them with an overflow check and
    /// died with a stack trace instead of showing the consumer what its provider claims.
    /// </summary>
    [Fact]
    public async Task Status_and_verify_show_byte_counts_whose_sum_overflows_instead_of_crashing()
    {
        await using var market = await MarketAsync();
        await using var provider = await PlacementClaimTests.WorkloadProviderAsync(market, "p", 4, 8192);
        var id = await CopyRunningAsync(market, provider);
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        for (var i = 0; i < 2; i++)
        {
            var record = new UsageRecord(id, 1, now - 20_000 + (i * 10_000), now - 10_000 + (i * 10_000), 1, 1, long.MaxValue, 10);
            await provider.SendAsync(new WorkloadUsage(id, 1, record.Sign(provider.Key)), Ct);
        }

        await Eventually.WaitAsync(async () => (await SendAsync(market, HttpMethod.Get, "/api/workloads/" + id, null)).Body!["usage"]!.AsArray(),
            u => u!.Count == 2, "both usage records", cancellationToken: Ct);
        using var data = new TempDirectory("coinop-consumer");
        File.WriteAllText(Path.Combine(data.Path, "owner.key"), Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(OwnerKey)));

        var shown = await Payments.PayoutTests.CoinopAsync("workload", "status", id, "--market", market.Url, "--data", data.Path);
        var verified = await Payments.PayoutTests.CoinopAsync("workload", "verify", id, "--market", market.Url, "--data", data.Path);

        Assert.True(shown.Exit == 0, shown.Output);
        Assert.Contains($"{long.MaxValue} net bytes", shown.Output, StringComparison.Ordinal);
        Assert.True(verified.Exit == 0, verified.Output);
        Assert.Contains("every record and receipt verifies", verified.Output, StringComparison.Ordinal);
    }
}
