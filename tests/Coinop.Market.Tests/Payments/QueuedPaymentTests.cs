using System.Net;
using System.Text;
using Coinop.Core.Protocol;
using Coinop.Ecash.Tokens;
using Coinop.Market.Payments;
using Coinop.Market.Tests.Inference;
using Coinop.Market.Tests.TestProviders;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Coinop.Market.Tests.Payments;

/// <summary>
/// A paid request waiting for a provider's slot: it holds no money while it waits for its first provider, and a retry
/// that waits keeps its hold until it gets a slot or gives it all back.
/// </summary>
public class QueuedPaymentTests
{
    [Fact]
    public async Task A_paid_request_that_times_out_or_leaves_while_queued_takes_nothing_and_its_token_stays_spendable()
    {
        var ct = TestContext.Current.CancellationToken;
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var market = await PaidMarket.StartAsync(configure: o => o.HeartbeatMinTtl = TimeSpan.FromMinutes(10), builder: b => b.Services.AddSingleton<TimeProvider>(time));
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var provider = await CapacityQueueTests.GatedProviderAsync(market.Market, 1, gate, ct);
        var blocker = PostAsync(market, await market.TokenAsync(25), ct);
        await provider.WaitForAsync<JobMessage>(_ => true).WaitAsync(TimeSpan.FromSeconds(30), ct);

        var timingOut = await market.TokenAsync(25);
        var timedOut = PostAsync(market, timingOut, ct, timeoutSeconds: 30);
        await CapacityQueueTests.QueuedAsync(market.Market, 1, ct);
        time.Advance(TimeSpan.FromSeconds(31));
        using (var response = await timedOut)
        {
            Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
            Assert.False(response.Headers.Contains(PaidInferenceBilling.HeaderName)); // nothing was taken, so there is no change
        }

        var leaving = await market.TokenAsync(25);
        using (var cancel = CancellationTokenSource.CreateLinkedTokenSource(ct))
        {
            var left = PostAsync(market, leaving, cancel.Token);
            await CapacityQueueTests.QueuedAsync(market.Market, 1, ct);
            await cancel.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => left);
        }

        await CapacityQueueTests.QueuedAsync(market.Market, 0, ct);
        gate.SetResult();
        using (var served = await blocker)
        {
            Assert.Equal(HttpStatusCode.OK, served.StatusCode);
        }

        Assert.Single(provider.Jobs);
        Assert.Equal(25UL, await market.RedeemAsync(timingOut));
        Assert.Equal(25UL, await market.RedeemAsync(leaving));
        var s = await market.AssertBalancedAsync();
        Assert.Equal(25_000, s.ReceivedMsat); // only the blocker paid
        Assert.Equal(0, s.HeldMsat);
    }

    [Fact]
    public async Task A_retry_waiting_for_a_slot_keeps_its_hold_and_gives_all_of_it_back_when_the_deadline_passes()
    {
        var ct = TestContext.Current.CancellationToken;
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var market = await PaidMarket.StartAsync(configure: o => o.HeartbeatMinTtl = TimeSpan.FromMinutes(10), builder: b => b.Services.AddSingleton<TimeProvider>(time));
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var busy = await CapacityQueueTests.GatedProviderAsync(market.Market, 1, gate, ct);
        var blocker = PostAsync(market, await market.TokenAsync(25), ct);
        await busy.WaitForAsync<JobMessage>(_ => true).WaitAsync(TimeSpan.FromSeconds(30), ct);
        // A cheaper provider that fails: the request goes there first, then waits for the busy one's slot.
        await using var failing = await market.Market.ProviderAsync("llama3", ct, name: "failing", inSats: 100, outSats: 300, script: Scripts.Fail());

        var waiting = PostAsync(market, await market.TokenAsync(30), ct, timeoutSeconds: 30);
        await failing.WaitForAsync<JobMessage>(_ => true).WaitAsync(TimeSpan.FromSeconds(30), ct);
        await CapacityQueueTests.QueuedAsync(market.Market, 1, ct);
        Assert.True((await market.SummaryAsync()).HeldMsat > 25_000); // the blocker's hold and the waiting retry's

        time.Advance(TimeSpan.FromSeconds(31));
        using (var response = await waiting)
        {
            Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
            Assert.Equal(30UL, TokenCodec.Decode(response.Headers.GetValues(PaidInferenceBilling.HeaderName).Single()).Amount);
        }

        gate.SetResult();
        (await blocker).Dispose();
        Assert.Single(busy.Jobs);
        var s = await market.AssertBalancedAsync();
        Assert.Equal(0, s.HeldMsat);
        Assert.Equal(55_000, s.ReceivedMsat);
    }

    private static Task<HttpResponseMessage> PostAsync(PaidMarket market, string token, CancellationToken ct, int? timeoutSeconds = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent(PaidMarket.ChatBody(maxTokens: 1000), Encoding.UTF8, "application/json"),
        };
        request.Headers.Add(PaidInferenceBilling.HeaderName, token);
        if (timeoutSeconds is { } seconds)
        {
            request.Headers.Add("X-Coinop-Timeout", seconds.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        return market.Http.SendAsync(request, ct);
    }
}
