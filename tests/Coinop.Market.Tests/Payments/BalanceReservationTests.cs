using System.Net;
using Coinop.Market.Tests.Inference;
using Coinop.Storage;
using Coinop.TestKit;

namespace Coinop.Market.Tests.Payments;

/// <summary>
/// What requests in flight reserve of a balance (kept in the market's process on SQLite, a durable hold on PostgreSQL)
/// cannot be spent twice or withdrawn: attacked with a burst of requests on one key and a refund racing them, and with a
/// second market process on the same SQLite store.
/// </summary>
public class BalanceReservationTests
{
    [Theory]
    [MemberData(nameof(PaidMarket.Dialects), MemberType = typeof(PaidMarket))]
    public async Task A_burst_on_one_balance_and_a_refund_racing_it_never_take_more_than_the_balance_and_every_granted_request_is_charged(SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await PaidMarket.StartAsync(dialect);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var provider = await CapacityQueueTests.GatedProviderAsync(market.Market, 64, gate, ct);

        // What one request reserves, seen on a probe balance while its request waits at the provider.
        var probe = (await market.PostJsonAsync("/v1/balance/create", new { token = await market.TokenAsync(1) })).GetProperty("api_key").GetString()!;
        var probing = market.ChatAsync(bearer: probe);
        await Eventually.WaitAsync(() => Task.FromResult<int?>(provider.Jobs.Count), n => n == 1, "the probe at the provider", cancellationToken: ct);
        var reservation = 1_000 - (await market.GetJsonAsync("/v1/balance/info", probe)).GetProperty("balance_msat").GetInt64();
        Assert.InRange(reservation, 1, 500);

        const long funded = 3_000;
        var key = (await market.PostJsonAsync("/v1/balance/create", new { token = await market.TokenAsync(3) })).GetProperty("api_key").GetString()!;
        var fits = (int)(funded / reservation);
        var burst = Enumerable.Range(0, fits + 4).Select(_ => market.ChatAsync(bearer: key)).ToList();
        // The refund races the rest of the burst once one request holds its reservation: sent with the first, it could
        // win outright and leave the burst nothing to race for (all refused, which is right but proves nothing).
        await Eventually.WaitAsync(() => Task.FromResult<int?>(provider.Jobs.Count), n => n >= 2, "a request of the burst at the provider", cancellationToken: ct);
        var refund = RefundAsync(market, key, ct);

        // Every request of the burst is either at the provider with its reservation or refused (402) at once.
        var refundedMsat = await refund * 1000;
        await Eventually.WaitAsync(() => Task.FromResult<int?>(provider.Jobs.Count - 1 + burst.Count(r => r.IsCompleted)), n => n == burst.Count,
            "the burst at the provider or refused", cancellationToken: ct);
        var refused = burst.Where(r => r.IsCompleted).Select(r => r.Result).ToList();
        Assert.All(refused, r => Assert.Equal(HttpStatusCode.PaymentRequired, r.StatusCode));
        var granted = burst.Count - refused.Count;
        var available = (await market.GetJsonAsync("/v1/balance/info", key)).GetProperty("balance_msat").GetInt64();

        Assert.True(granted * reservation + refundedMsat <= funded, $"{granted} × {reservation} msat reserved and {refundedMsat} msat refunded of {funded}");
        Assert.Equal(funded - refundedMsat - granted * reservation, available);
        Assert.True(available < reservation, $"{available} msat left, a request was refused"); // refusals only when it did not fit
        Assert.True(granted >= 1);

        gate.SetResult();
        foreach (var response in await Task.WhenAll(burst.Append(probing)))
        {
            Assert.Contains(response.StatusCode, new[] { HttpStatusCode.OK, HttpStatusCode.PaymentRequired });
            response.Dispose();
        }

        Assert.Equal(granted + 1, provider.Jobs.Count);
        var left = (await market.GetJsonAsync("/v1/balance/info", key)).GetProperty("balance_msat").GetInt64();
        var charged = funded - refundedMsat - left;
        Assert.InRange(charged, granted, granted * reservation); // each served request charged something, at most its reservation
        var books = await market.AssertBalancedAsync();
        Assert.Equal(0, books.HeldMsat);
    }

    /// <summary>Refunds a balance; 0 when it held less than a sat to refund (400 <c>balance_empty</c>).</summary>
    private static async Task<long> RefundAsync(PaidMarket market, string key, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/balance/refund");
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key);
        using var response = await market.Http.SendAsync(request, ct);
        using var body = System.Text.Json.JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
        if (response.StatusCode == HttpStatusCode.BadRequest && body.RootElement.GetProperty("error").GetProperty("code").GetString() == "balance_empty")
        {
            return 0;
        }

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return body.RootElement.GetProperty("amount").GetInt64();
    }

    [Fact]
    public async Task A_second_market_process_on_the_same_SQLite_store_is_refused_with_one_clear_line()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDirectory("coinop-market-lock");
        var args = new[] { "market", "--data", dir.Path, "--urls", "http://127.0.0.1:0" };
        await using (var first = await PaidMarket.StartAsync(dataDir: dir.Path))
        {
            await using var second = ChildProcess.StartCoinop("second-market", args);
            var exit = await second.Exited.WaitAsync(TimeSpan.FromSeconds(60), ct);
            Assert.NotEqual(0, exit);
            Assert.Contains("in use by another coinop market process", second.Output, StringComparison.Ordinal);
            Assert.DoesNotContain("   at ", second.Output, StringComparison.Ordinal); // one line, no stack trace
        }

        // Once the first market is gone, the store is free again.
        await using var after = ChildProcess.StartCoinop("market-after", args);
        await after.WaitForLineAsync(l => l.Contains("coinop market listening", StringComparison.Ordinal), TimeSpan.FromSeconds(60), ct);
    }
}
