using System.Net;
using System.Text.Json;
using Coinop.Market.Payments;
using Coinop.Storage;

namespace Coinop.Market.Tests.Payments;

/// <summary>Balance keys: create, info, top-up, refund, paying with <c>sk-</c> keys and with a token used as the key.</summary>
public class BalanceTests
{
    [Theory]
    [MemberData(nameof(PaidMarket.Dialects), MemberType = typeof(PaidMarket))]
    public async Task A_balance_is_created_spent_topped_up_and_refunded(SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await PaidMarket.StartAsync(dialect);
        await using var provider = await market.Market.ProviderAsync("llama3", ct);

        var created = await market.PostJsonAsync("/v1/balance/create", new { token = await market.TokenAsync(10) });
        var key = created.GetProperty("api_key").GetString()!;
        Assert.StartsWith("sk-", key, StringComparison.Ordinal);
        Assert.Equal(10_000, created.GetProperty("balance_msat").GetInt64());

        using (var paid = await market.ChatAsync(bearer: key))
        {
            Assert.Equal(HttpStatusCode.OK, paid.StatusCode);
            Assert.False(paid.Headers.Contains(PaidInferenceBilling.HeaderName)); // a balance payer gets no ecash back
        }

        Assert.Equal(10_000 - 26, (await market.GetJsonAsync("/v1/balance/info", key)).GetProperty("balance_msat").GetInt64());
        var topped = await market.PostJsonAsync("/v1/balance/topup", new { token = await market.TokenAsync(5) }, key);
        Assert.Equal(5_000, topped.GetProperty("added_msat").GetInt64());
        Assert.Equal(15_000 - 26, topped.GetProperty("balance_msat").GetInt64());

        var refund = await market.PostJsonAsync("/v1/balance/refund", null, key);
        Assert.Equal(14, refund.GetProperty("amount").GetInt64()); // to the last whole sat
        Assert.Equal(974, refund.GetProperty("balance_msat").GetInt64()); // the sub-sat remainder stays with the key
        Assert.Equal(14UL, await market.RedeemAsync(refund.GetProperty("token").GetString()!));
        Assert.Equal(974, (await market.GetJsonAsync("/v1/balance/info", key)).GetProperty("balance_msat").GetInt64());
        await market.PostJsonAsync("/v1/balance/refund", null, key, HttpStatusCode.BadRequest);

        var s = await market.AssertBalancedAsync();
        Assert.Equal(15_000, s.ReceivedMsat);
        Assert.Equal(14_000, s.RefundedMsat);
        Assert.Equal(974, s.BalancesMsat);
        Assert.Equal(26, s.SpentMsat); // a balance is charged to the msat
    }

    [Fact]
    public async Task A_balance_too_low_for_the_reservation_gets_402_and_keeps_its_value()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await PaidMarket.StartAsync(configure: PayoutTests.AllowDearProviders);
        await using var provider = await market.Market.ProviderAsync("llama3", ct, inSats: 20_000, outSats: 60_000);
        var key = (await market.PostJsonAsync("/v1/balance/create", new { token = await market.TokenAsync(1) })).GetProperty("api_key").GetString()!;

        using var response = await market.ChatAsync(bearer: key);

        Assert.Equal(HttpStatusCode.PaymentRequired, response.StatusCode);
        Assert.StartsWith("creqA", response.Headers.GetValues(PaidInferenceBilling.HeaderName).Single(), StringComparison.Ordinal);
        Assert.Empty(provider.Jobs);
        Assert.Equal(1_000, (await market.GetJsonAsync("/v1/balance/info", key)).GetProperty("balance_msat").GetInt64());

        await market.AssertBalancedAsync();
    }

    [Theory]
    [MemberData(nameof(PaidMarket.Dialects), MemberType = typeof(PaidMarket))]
    public async Task A_token_used_as_the_Bearer_key_opens_a_balance_and_reuses_it(SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await PaidMarket.StartAsync(dialect);
        await using var provider = await market.Market.ProviderAsync("llama3", ct);
        var token = await market.TokenAsync(3);

        // Concurrent first uses: the token is redeemed once, and every request pays from the one balance.
        var first = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => market.ChatAsync(bearer: token)));
        Assert.All(first, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        using (var again = await market.ChatAsync(bearer: token))
        {
            Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        }

        Assert.Equal(3_000 - 5 * 26, (await market.GetJsonAsync("/v1/balance/info", token)).GetProperty("balance_msat").GetInt64());
        var refund = await market.PostJsonAsync("/v1/balance/refund", null, token);
        Assert.Equal(2, refund.GetProperty("amount").GetInt64());
        var s = await market.AssertBalancedAsync();
        Assert.Equal(3_000, s.ReceivedMsat);
        foreach (var r in first)
        {
            r.Dispose();
        }
    }

    [Fact]
    public async Task Unknown_keys_and_bad_bodies_are_refused_with_clear_errors()
    {
        await using var market = await PaidMarket.StartAsync();
        await using var provider = await market.Market.ProviderAsync("llama3", TestContext.Current.CancellationToken);

        var unknown = await market.GetJsonAsync("/v1/balance/info", "sk-nope", HttpStatusCode.Unauthorized);
        Assert.Equal("invalid_api_key", unknown.GetProperty("error").GetProperty("code").GetString());
        var missing = await market.PostJsonAsync("/v1/balance/refund", null, null, HttpStatusCode.Unauthorized);
        Assert.Equal("missing_api_key", missing.GetProperty("error").GetProperty("code").GetString());
        var noToken = await market.PostJsonAsync("/v1/balance/create", new { nope = 1 }, null, HttpStatusCode.BadRequest);
        Assert.Equal("invalid_body", noToken.GetProperty("error").GetProperty("code").GetString());
        var badToken = await market.PostJsonAsync("/v1/balance/create", new { token = "cashuBnot-a-token" }, null, HttpStatusCode.BadRequest);
        Assert.Equal("invalid_payment", badToken.GetProperty("error").GetProperty("type").GetString());
        using var unpaid = await market.ChatAsync(bearer: "sk-nope");
        Assert.Equal(HttpStatusCode.Unauthorized, unpaid.StatusCode);
        using var body = JsonDocument.Parse(await unpaid.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
        Assert.Equal("invalid_api_key", body.RootElement.GetProperty("error").GetProperty("code").GetString());

        await market.AssertBalancedAsync();
    }

    [Fact]
    public async Task The_ledger_summary_needs_the_admin_token()
    {
        await using var market = await PaidMarket.StartAsync();

        var none = await market.GetJsonAsync("/api/ledger/summary", null, HttpStatusCode.Unauthorized);
        Assert.Equal("unauthorized", none.GetProperty("error").GetProperty("code").GetString());
        await market.GetJsonAsync("/api/ledger/summary", "adm_wrong", HttpStatusCode.Unauthorized);
        var summary = await market.GetJsonAsync("/api/ledger/summary", market.AdminToken);
        foreach (var field in new[] { "received_msat", "spent_msat", "refunded_msat", "balances_msat", "provider_earned_msat", "fee_msat", "paid_out_msat" })
        {
            Assert.Equal(0, summary.GetProperty(field).GetInt64());
        }

        await market.AssertBalancedAsync();
    }
}
