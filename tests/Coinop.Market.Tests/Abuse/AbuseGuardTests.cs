using System.Net;
using System.Text;
using System.Text.Json;
using Coinop.Market.Abuse;
using Coinop.Storage;
using Coinop.Storage.Ledger;
using Coinop.Storage.Payments;
using Coinop.Storage.Providers;
using Dapper;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Coinop.Market.Tests.Abuse;

/// <summary>Strangers cannot grow the market's store without bound, nor hammer quotes and handshakes.</summary>
public class AbuseGuardTests
{
    [Fact]
    public async Task Quotes_and_handshakes_beyond_the_per_client_limit_get_429_with_retry_after_and_a_json_error()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await TestMarket.StartAsync(options: o =>
        {
            (o.RateLimitLoopback, o.QuoteRateLimit, o.HandshakeRateLimit) = (true, 3, 2);
            o.RateLimitWindow = TimeSpan.FromMinutes(10);
        });

        for (var i = 0; i < 3; i++)
        {
            using var ok = await QuoteAsync(market, ct);
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }

        using var refused = await QuoteAsync(market, ct);
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.True(refused.Headers.RetryAfter?.Delta > TimeSpan.Zero);
        using (var body = JsonDocument.Parse(await refused.Content.ReadAsStringAsync(ct)))
        {
            Assert.Contains("too many requests", body.RootElement.GetProperty("detail").GetString(), StringComparison.Ordinal);
        }

        Assert.Equal(3, await market.Database.ReadAsync(c => c.ExecuteScalarAsync<int>("SELECT COUNT(*) FROM mint_quotes"), ct));

        // Handshakes: plain GETs are refused by the gateway (not a WebSocket), but each counts until the limit.
        for (var i = 0; i < 2; i++)
        {
            using var attempt = await market.Http.GetAsync(market.Url + "/provider/connect", ct);
            Assert.NotEqual(HttpStatusCode.TooManyRequests, attempt.StatusCode);
        }

        using var handshake = await market.Http.GetAsync(market.Url + "/provider/connect", ct);
        Assert.Equal(HttpStatusCode.TooManyRequests, handshake.StatusCode);
        Assert.NotNull(handshake.Headers.RetryAfter);
        using var error = JsonDocument.Parse(await handshake.Content.ReadAsStringAsync(ct));
        Assert.Equal("rate_limited", error.RootElement.GetProperty("error").GetProperty("code").GetString());
    }

    [Fact]
    public async Task Loopback_clients_are_not_limited_by_default()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await TestMarket.StartAsync(options: o => o.QuoteRateLimit = 1);
        for (var i = 0; i < 3; i++)
        {
            using var ok = await QuoteAsync(market, ct);
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }
    }

    [Theory]
    [MemberData(nameof(TestMarket.Dialects), MemberType = typeof(TestMarket))]
    public async Task The_sweep_prunes_expired_quotes_old_nonces_and_idle_providers_that_never_earned(SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        var time = new FakeTimeProvider(DateTimeOffset.FromUnixTimeSeconds(1_800_000_000));
        // The periodic sweep stays out of the way (its interval is longer than the test): the test sweeps itself.
        await using var market = await TestMarket.StartAsync(dialect, services: s => s.AddSingleton<TimeProvider>(time),
            options: o => o.StaleRowSweepInterval = TimeSpan.FromDays(30));
        market.Lightning.AutoPay = false;
        var start = time.GetUtcNow();
        var registry = market.App.Services.GetRequiredService<IProviderRegistryStore>();
        var requests = market.App.Services.GetRequiredService<IProviderRequestStore>();

        // What a stranger can create for free: unpaid quotes, providers (open enrollment), read-only request nonces.
        for (var i = 0; i < 5; i++)
        {
            using var quote = await QuoteAsync(market, ct);
            Assert.Equal(HttpStatusCode.OK, quote.StatusCode);
        }

        await registry.UpsertSeenAsync(new ProviderRecord("p-idle", [1, 2, 3], "idle", start, start, false), ct);
        await registry.UpsertSeenAsync(new ProviderRecord("p-earned", [4, 5, 6], "earned", start, start, false), ct);
        await registry.UpsertSeenAsync(new ProviderRecord("p-online", [7, 8, 9], "online", start, start, true), ct);
        await market.Database.WriteAsync(async (c, t) =>
        {
            await c.ExecuteAsync("INSERT INTO ledger_accounts (account, kind, created_at) VALUES (@a, 'provider', 0)",
                new { a = LedgerAccounts.Provider("p-earned") }, t);
            await requests.TryRecordAsync(c, t, new ProviderRequestRecord("n-read", "p-idle", "GET", "/api/provider/earnings", null, start, start, null), ct);
            await requests.TryRecordAsync(c, t, new ProviderRequestRecord("n-payout", "p-earned", "POST", "/api/provider/payout", 1, start, start, "cashuB..."), ct);
        }, ct);

        var sweep = market.App.Services.GetRequiredService<StaleRowSweep>();
        Assert.Equal(0, (await sweep.SweepOnceAsync(ct)).Total); // nothing is stale yet

        time.Advance(TimeSpan.FromDays(8));
        var pruned = await sweep.SweepOnceAsync(ct);

        Assert.Equal((5, 1, 1), (pruned.MintQuotes, pruned.ProviderNonces, pruned.Providers));
        Assert.Equal(["p-earned", "p-online"], (await registry.ListAsync(ct)).Select(p => p.Id).Order());
        Assert.Null(await requests.FindAsync("n-read", ct));
        Assert.NotNull(await requests.FindAsync("n-payout", ct)); // a payout's record is kept
    }

    private static Task<HttpResponseMessage> QuoteAsync(TestMarket market, CancellationToken ct) =>
        market.Http.PostAsync(market.MintUrl + "/v1/mint/quote/bolt11",
            new StringContent("""{"amount":10,"unit":"sat"}""", Encoding.UTF8, "application/json"), ct);
}
