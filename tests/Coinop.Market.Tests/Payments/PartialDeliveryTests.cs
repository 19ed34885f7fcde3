using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Coinop.Core.Protocol;
using Coinop.Ecash.Tokens;
using Coinop.Market.Payments;
using Coinop.Market.Tests.Inference;
using Coinop.Market.Tests.TestProviders;
using Coinop.Storage;
using Coinop.Storage.Ledger;
using Coinop.TestKit;
using Microsoft.Extensions.DependencyInjection;

namespace Coinop.Market.Tests.Payments;

/// <summary>
/// Streams that do not end well: what reached the consumer is charged (input estimate + output relayed) and credited
/// to the provider, the rest waits in the paying token's balance; change a consumer may have missed is collected into
/// that balance, once, when the token is used as the Bearer key.
/// </summary>
public class PartialDeliveryTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>The test provider's price: 1 msat per input token, 3 per output token; the prompt is estimated at a token per 3 bytes.</summary>
    private static long DeliveredMsat(long outputTokens) => (Encoding.UTF8.GetByteCount(PaidMarket.ChatBody(stream: true)) + 2) / 3 + outputTokens * 3;

    [Theory]
    [MemberData(nameof(PaidMarket.Dialects), MemberType = typeof(PaidMarket))]
    public async Task A_provider_that_dies_mid_stream_is_paid_for_what_the_consumer_got_and_the_rest_waits_under_the_token(SqlDialect dialect)
    {
        await using var market = await PaidMarket.StartAsync(dialect);
        // The role chunk and three words, then the backend breaks.
        await using var provider = await market.Market.ProviderAsync("llama3", Ct, script: async (job, run) =>
        {
            foreach (var part in Scripts.Output(job, "one two three").Take(4))
            {
                await run.SendAsync(part);
            }

            await run.ErrorAsync(JobErrorCodes.BackendUnreachable, "backend crashed", outputSent: true);
        });
        var token = await market.TokenAsync(5);

        var sse = await Sse.PostAsync(market.Http, "/v1/chat/completions", PaidMarket.ChatBody(stream: true), Ct, (PaidInferenceBilling.HeaderName, token));

        Assert.Equal(HttpStatusCode.OK, sse.Status);
        Assert.Contains("three", sse.Raw, StringComparison.Ordinal);
        Assert.Contains("\"error\"", sse.Data[^1], StringComparison.Ordinal);
        Assert.Empty(sse.Comments); // no change on a broken stream: it waits under the token
        var charge = DeliveredMsat(3);
        var s = await market.AssertBalancedAsync();
        Assert.Equal((5_000, charge, 0L, 5_000 - charge, 0L), (s.ReceivedMsat, s.SpentMsat, s.RefundedMsat, s.BalancesMsat, s.HeldMsat));
        Assert.Equal(Settlement.ProviderShare(charge, 10), (await market.Services.GetRequiredService<ILedgerStore>().EarningsAsync(provider.ProviderId, Ct)).EarnedMsat);

        // The consumer takes the rest back with the same token as the Bearer key.
        var refund = await market.PostJsonAsync("/v1/balance/refund", null, token);
        Assert.Equal((5_000 - charge) / 1000, refund.GetProperty("amount").GetInt64());
        Assert.Equal((ulong)((5_000 - charge) / 1000), await market.RedeemAsync(refund.GetProperty("token").GetString()!));
        await market.AssertBalancedAsync();
    }

    [Fact]
    public async Task A_consumer_that_leaves_mid_stream_pays_for_the_words_it_received()
    {
        await using var market = await PaidMarket.StartAsync();
        var cancelled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var provider = await market.Market.ProviderAsync("llama3", Ct, script: async (job, run) =>
        {
            foreach (var part in Scripts.Output(job, "one two three four").Take(3))
            {
                await run.SendAsync(part);
            }

            try
            {
                await Task.Delay(Timeout.Infinite, run.Cancelled);
            }
            finally
            {
                cancelled.TrySetResult();
            }
        });

        using (var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions"))
        {
            request.Content = new StringContent(PaidMarket.ChatBody(stream: true), Encoding.UTF8, "application/json");
            request.Headers.Add(PaidInferenceBilling.HeaderName, await market.TokenAsync(5));
            using var response = await market.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Ct);
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(Ct));
            var words = 0;
            while (words < 2 && await reader.ReadLineAsync(Ct) is { } line)
            {
                words += line.Contains("\"content\":\"one\"", StringComparison.Ordinal) || line.Contains("\"content\":\" two\"", StringComparison.Ordinal) ? 1 : 0;
            }

            Assert.Equal(2, words);
        } // leaves: the connection is dropped here

        await cancelled.Task.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        var s = await Eventually.WaitAsync<LedgerSummary>(async () => await market.SummaryAsync(), x => x is { HeldMsat: 0 }, "the hold settled", TimeSpan.FromSeconds(30), Ct);
        LedgerAssert.Balanced(s);
        Assert.Equal(DeliveredMsat(2), s.SpentMsat);
        Assert.Equal(5_000 - DeliveredMsat(2), s.BalancesMsat);
        Assert.Empty(await market.Services.GetRequiredService<ILedgerStore>().AuditAsync(Ct));
    }

    [Theory]
    [MemberData(nameof(PaidMarket.Dialects), MemberType = typeof(PaidMarket))]
    public async Task Change_that_may_have_missed_its_consumer_is_collected_once_by_the_paying_token(SqlDialect dialect)
    {
        await using var market = await PaidMarket.StartAsync(dialect);
        await using var provider = await market.Market.ProviderAsync("llama3", Ct, script: Scripts.Answer("one two three"));
        var token = await market.TokenAsync(5);
        var sse = await Sse.PostAsync(market.Http, "/v1/chat/completions", PaidMarket.ChatBody(stream: true), Ct, (PaidInferenceBilling.HeaderName, token));
        var change = Assert.Single(sse.Comments)["X-Cashu ".Length..];
        Assert.Equal(4UL, TokenCodec.Decode(change).Amount);

        // Say the consumer never saw the comment: the paying token, as the Bearer key, collects the change and refunds it.
        Assert.Equal(4_000, (await market.GetJsonAsync("/v1/balance/info", token)).GetProperty("balance_msat").GetInt64());
        var refund = await market.PostJsonAsync("/v1/balance/refund", null, token);
        Assert.Equal(4UL, await market.RedeemAsync(refund.GetProperty("token").GetString()!));
        await Assert.ThrowsAnyAsync<Exception>(() => market.RedeemAsync(change)); // the old change is spent: it was collected
        var empty = await market.PostJsonAsync("/v1/balance/refund", null, token, HttpStatusCode.BadRequest);
        Assert.Equal("balance_empty", empty.GetProperty("error").GetProperty("code").GetString());
        var s = await market.AssertBalancedAsync();
        Assert.Equal((5_000L, 4_000L, 0L), (s.ReceivedMsat, s.RefundedMsat, s.BalancesMsat));
    }

    [Fact]
    public async Task Change_the_consumer_already_took_is_not_collected_again()
    {
        await using var market = await PaidMarket.StartAsync();
        await using var provider = await market.Market.ProviderAsync("llama3", Ct, script: Scripts.Answer("one two three"));
        var token = await market.TokenAsync(5);
        using var response = await market.ChatAsync(xCashu: token);
        Assert.Equal(4UL, await market.RedeemAsync(response.Headers.GetValues(PaidInferenceBilling.HeaderName).Single()));

        using var info = new HttpRequestMessage(HttpMethod.Get, "/v1/balance/info");
        info.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var answer = await market.Http.SendAsync(info, Ct);
        Assert.Equal(HttpStatusCode.BadRequest, answer.StatusCode); // the token itself is spent and nothing waits under it
        var s = await market.AssertBalancedAsync();
        Assert.Equal((4_000L, 0L), (s.RefundedMsat, s.BalancesMsat));
    }
}
