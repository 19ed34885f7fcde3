using System.Net;
using System.Text.Json;
using Coinop.Ecash;
using Coinop.Ecash.Keysets;
using Coinop.Ecash.MintApi;
using Coinop.Ecash.Tokens;
using Coinop.Ecash.Wallet;
using Coinop.Market.Payments;
using Coinop.Storage;
using Coinop.Storage.Payments;
using Coinop.TestKit;
using Dapper;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Coinop.Market.Tests.Payments;

/// <summary>Tokens of other mints: accepted ones are swapped at their mint before serving; others are refused without a network call.</summary>
public class ForeignMintTests
{
    [Theory]
    [MemberData(nameof(PaidMarket.Dialects), MemberType = typeof(PaidMarket))]
    public async Task A_token_of_an_accepted_mint_is_swapped_there_and_pays(SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var other = await PaidMarket.StartAsync(); // its mint is the "other" mint
        await using var market = await PaidMarket.StartAsync(dialect, o => o.AcceptMints = [other.MintUrl]);
        await using var provider = await market.Market.ProviderAsync("llama3", ct);
        var token = await other.TokenAsync(6);

        using var response = await market.ChatAsync(xCashu: token);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var change = response.Headers.GetValues(PaidInferenceBilling.HeaderName).Single();
        Assert.Equal(other.MintUrl, TokenCodec.Decode(change).Mint); // change in the payer's own mint, never in the market's
        Assert.Equal(5UL, TokenCodec.Decode(change).Amount);
        var s = await market.AssertBalancedAsync();
        Assert.Equal(6_000, s.ReceivedMsat);
        // The consumer's proofs are spent at their mint; the market swapped them for fresh ones of the same value, handed
        // 5 sat of them back as the change (which the consumer can redeem there), and keeps the rest.
        await CashuAssert.FailsWith(11001, () => other.RedeemAsync(token));
        Assert.Equal(6, await market.Database.ReadAsync(c => c.ExecuteScalarAsync<long>("SELECT SUM(amount) FROM foreign_proofs"), ct));
        Assert.Equal(1, await market.Database.ReadAsync(c => c.ExecuteScalarAsync<long>("SELECT SUM(amount) FROM foreign_proofs WHERE given_for IS NULL"), ct));
        Assert.Equal(5UL, await other.RedeemAsync(change));
        Assert.Equal(ForeignPaymentState.Credited,
            (await market.Services.GetRequiredService<IForeignPaymentStore>().FindAsync(PaymentKeys.TokenKey(TokenCodec.Decode(token)), ct))!.State);
    }

    [Fact]
    public async Task A_token_of_an_accepted_mint_opens_a_balance_of_that_mints_ecash_refunded_in_it_and_topped_up_only_with_it()
    {
        await using var other = await PaidMarket.StartAsync();
        await using var market = await PaidMarket.StartAsync(configure: o => o.AcceptMints = [other.MintUrl]);
        await using var provider = await market.Market.ProviderAsync("llama3", TestContext.Current.CancellationToken);

        var created = await market.PostJsonAsync("/v1/balance/create", new { token = await other.TokenAsync(9) });
        var key = created.GetProperty("api_key").GetString()!;
        Assert.Equal(9_000, created.GetProperty("balance_msat").GetInt64());
        var topped = await market.PostJsonAsync("/v1/balance/topup", new { token = await other.TokenAsync(20) }, key);
        Assert.Equal(29_000, topped.GetProperty("balance_msat").GetInt64());

        // Our own mint's ecash cannot top it up (its refund would be owed in two mints), nor can the other mint's top up ours.
        var ours = await market.TokenAsync(3);
        var refused = await market.PostJsonAsync("/v1/balance/topup", new { token = ours }, key, HttpStatusCode.BadRequest);
        Assert.Contains("holds ecash of " + other.MintUrl, refused.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal(3UL, await market.RedeemAsync(ours)); // untouched
        var ourKey = (await market.PostJsonAsync("/v1/balance/create", new { token = await market.TokenAsync(4) })).GetProperty("api_key").GetString();
        var theirs = await other.TokenAsync(2);
        await market.PostJsonAsync("/v1/balance/topup", new { token = theirs }, ourKey, HttpStatusCode.BadRequest);
        Assert.Equal(2UL, await other.RedeemAsync(theirs)); // refused before any call to that mint

        using (var paid = await market.ChatAsync(bearer: key))
        {
            Assert.Equal(HttpStatusCode.OK, paid.StatusCode);
        }

        var left = (await market.GetJsonAsync("/v1/balance/info", key)).GetProperty("balance_msat").GetInt64();
        Assert.True(left is < 29_000 and > 27_000, $"{left} msat left");
        var refund = await market.PostJsonAsync("/v1/balance/refund", null, key);
        var token = refund.GetProperty("token").GetString()!;
        Assert.Equal(other.MintUrl, TokenCodec.Decode(token).Mint); // paid back in the mint that funded it
        Assert.Equal((ulong)(left / 1000), await other.RedeemAsync(token));
        var mine = await market.PostJsonAsync("/v1/balance/refund", null, ourKey);
        Assert.Equal(market.MintUrl, TokenCodec.Decode(mine.GetProperty("token").GetString()!).Mint);

        await market.AssertBalancedAsync();
    }

    [Fact]
    public async Task A_foreign_token_used_as_the_bearer_key_is_refunded_in_its_own_mint_even_while_that_mint_is_down()
    {
        var outage = new MintOutage();
        await using var other = await PaidMarket.StartAsync(builder: b => b.Services.AddSingleton<IStartupFilter>(outage));
        await using var market = await PaidMarket.StartAsync(configure: o => o.AcceptMints = [other.MintUrl]);
        await using var provider = await market.Market.ProviderAsync("llama3", TestContext.Current.CancellationToken);
        var token = await other.TokenAsync(100);

        using (var paid = await market.ChatAsync(bearer: token))
        {
            Assert.Equal(HttpStatusCode.OK, paid.StatusCode);
        }

        // The mint stops answering (every request to it refused); the refund needs no call to it: the notes are already signed.
        outage.Down = true;
        var refund = await market.PostJsonAsync("/v1/balance/refund", null, token);
        var back = refund.GetProperty("token").GetString()!;
        Assert.Equal(other.MintUrl, TokenCodec.Decode(back).Mint);
        outage.Down = false;
        Assert.Equal(refund.GetProperty("amount").GetUInt64(), await other.RedeemAsync(back));
        Assert.True(refund.GetProperty("amount").GetUInt64() >= 99);

        await market.AssertBalancedAsync();
    }

    [Fact]
    public async Task A_token_of_a_mint_not_accepted_is_refused_before_any_call_to_that_mint()
    {
        var ct = TestContext.Current.CancellationToken;
        var mintCalls = 0;
        await using var stranger = await PaidMarket.StartAsync(builder: b => b.Services.AddSingleton<IStartupFilter>(
            new CountRequests(path => path.StartsWithSegments("/mint/v1/swap") || path.StartsWithSegments("/mint/v1/keysets") || path.StartsWithSegments("/mint/v1/checkstate"),
                () => Interlocked.Increment(ref mintCalls))));
        await using var market = await PaidMarket.StartAsync();
        await using var provider = await market.Market.ProviderAsync("llama3", ct);
        var token = await stranger.TokenAsync(5);
        var before = Volatile.Read(ref mintCalls); // minting the token asked for the keysets

        using var response = await market.ChatAsync(xCashu: token);
        using var balance = await market.ChatAsync(bearer: token);

        foreach (var r in new[] { response, balance })
        {
            Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
            using var json = JsonDocument.Parse(await r.Content.ReadAsStringAsync(ct));
            Assert.Equal("12001", json.RootElement.GetProperty("error").GetProperty("code").GetString());
            Assert.Contains("does not accept ecash of " + stranger.MintUrl, json.RootElement.GetProperty("error").GetProperty("message").GetString(),
                StringComparison.Ordinal);
        }

        Assert.Equal(before, Volatile.Read(ref mintCalls));
        Assert.Empty(provider.Jobs);
        Assert.Equal(5UL, await stranger.RedeemAsync(token));

        await market.AssertBalancedAsync();
    }

    [Fact]
    public async Task A_swap_the_market_died_in_is_recovered_from_the_mint_and_credited_once()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDirectory("coinop-market");
        var urls = $"http://127.0.0.1:{Ports.GetFree()}";
        await using var other = await PaidMarket.StartAsync();
        var swapped = await other.TokenAsync(7);
        var neverSwapped = await other.TokenAsync(3);
        await using (var market = await PaidMarket.StartAsync(configure: o => { o.Urls = urls; o.AcceptMints = [other.MintUrl]; }, dataDir: dir.Path))
        {
            // What the market writes before swapping at the other mint; then it died: once after the mint signed, once before.
            var store = market.Services.GetRequiredService<IForeignPaymentStore>();
            var node = market.Services.GetRequiredService<NodeIdentity>().NodeId;
            var keysets = (await other.Mint.GetKeysetsAsync(ct)).Keysets;
            foreach (var (token, swap) in new[] { (swapped, true), (neverSwapped, false) })
            {
                var decoded = TokenCodec.Decode(token).ResolveKeysetIds([.. keysets.Select(k => k.Id)]);
                var outputs = BlindedOutputs.Create(keysets.Last(k => k.Active).Id, Amounts.Split(decoded.Amount!.Value));
                var now = TimeProvider.System.GetUtcNow().AddMinutes(-5);
                Assert.True(await store.TryStartAsync(new ForeignPaymentRecord(PaymentKeys.TokenKey(decoded), other.MintUrl, token, (long)decoded.Amount.Value,
                    BlindedOutputs.ToJson(outputs), node, ForeignPaymentState.Pending, now, now), ct));
                if (swap)
                {
                    await other.Mint.SwapAsync(new SwapRequest([.. decoded.Proofs.Select(p => p with { Dleq = null })], [.. outputs.Select(o => o.Message)]), ct);
                }
            }
        }

        await using var restarted = await PaidMarket.StartAsync(configure: o => { o.Urls = urls; o.AcceptMints = [other.MintUrl]; }, dataDir: dir.Path);

        var summary = await Eventually.WaitAsync(async () => await restarted.SummaryAsync(), s => s!.ReceivedMsat > 0, "the swap recovered", cancellationToken: ct);
        Assert.Equal(7_000, summary.ReceivedMsat);
        Assert.Equal(7_000, (await restarted.GetJsonAsync("/v1/balance/info", swapped)).GetProperty("balance_msat").GetInt64());
        var stored = restarted.Services.GetRequiredService<IForeignPaymentStore>();
        await Eventually.WaitAsync(async () => (await stored.FindAsync(PaymentKeys.TokenKey(TokenCodec.Decode(neverSwapped)), ct))?.State,
            s => s == ForeignPaymentState.Failed, "the unswapped redemption failed", cancellationToken: ct);
        Assert.Equal(3UL, await other.RedeemAsync(neverSwapped)); // the consumer still owns it
        await restarted.AssertBalancedAsync();
    }

    [Fact]
    public async Task A_hostile_mint_does_not_stop_the_recovery_of_the_others_and_its_inflated_signatures_credit_nothing()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDirectory("coinop-market");
        var urls = $"http://127.0.0.1:{Ports.GetFree()}";
        await using var good = await PaidMarket.StartAsync();
        var keyset = MintKeyset.Derive(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32), 0, "sat", 0);
        await using var garbage = await HostileMint.StartAsync(keyset, inflate: false);
        await using var inflating = await HostileMint.StartAsync(keyset, inflate: true);
        var swapped = await good.TokenAsync(7);
        var accept = new List<string> { garbage.Url, inflating.Url, good.MintUrl };
        await using (var market = await PaidMarket.StartAsync(configure: o => { o.Urls = urls; o.AcceptMints = accept; }, dataDir: dir.Path))
        {
            var store = market.Services.GetRequiredService<IForeignPaymentStore>();
            var node = market.Services.GetRequiredService<NodeIdentity>().NodeId;
            // Left pending by the previous run, the hostile mints' redemptions first: one answers restore with a 200 that
            // is not JSON, the other signs our 1-sat output as 2^62 sat with its own (valid) keys.
            var earlier = TimeProvider.System.GetUtcNow().AddMinutes(-6);
            foreach (var (mint, key) in new[] { (garbage.Url, "0-hostile-garbage"), (inflating.Url, "0-hostile-inflating") })
            {
                var outputs = BlindedOutputs.Create(keyset.Id, [1UL]);
                Assert.True(await store.TryStartAsync(new ForeignPaymentRecord(key, mint, "cashuB-hostile", 1, BlindedOutputs.ToJson(outputs), node,
                    ForeignPaymentState.Pending, earlier, earlier), ct));
            }

            var keysets = (await good.Mint.GetKeysetsAsync(ct)).Keysets;
            var decoded = TokenCodec.Decode(swapped).ResolveKeysetIds([.. keysets.Select(k => k.Id)]);
            var fresh = BlindedOutputs.Create(keysets.Last(k => k.Active).Id, Amounts.Split(decoded.Amount!.Value));
            var now = TimeProvider.System.GetUtcNow().AddMinutes(-5);
            Assert.True(await store.TryStartAsync(new ForeignPaymentRecord(PaymentKeys.TokenKey(decoded), good.MintUrl, swapped, (long)decoded.Amount.Value,
                BlindedOutputs.ToJson(fresh), node, ForeignPaymentState.Pending, now, now), ct));
            await good.Mint.SwapAsync(new SwapRequest([.. decoded.Proofs.Select(p => p with { Dleq = null })], [.. fresh.Select(o => o.Message)]), ct);
        }

        await using var restarted = await PaidMarket.StartAsync(configure: o => { o.Urls = urls; o.AcceptMints = accept; }, dataDir: dir.Path);

        var summary = await Eventually.WaitAsync(async () => await restarted.SummaryAsync(), s => s!.ReceivedMsat > 0, "the good mint's swap recovered",
            cancellationToken: ct);
        Assert.Equal(7_000, summary.ReceivedMsat);
        var stored = restarted.Services.GetRequiredService<IForeignPaymentStore>();
        await Eventually.WaitAsync(async () => (await stored.FindAsync("0-hostile-inflating", ct))?.State,
            s => s == ForeignPaymentState.Failed, "the inflated signatures refused", cancellationToken: ct);
        Assert.Equal(ForeignPaymentState.Pending, (await stored.FindAsync("0-hostile-garbage", ct))!.State); // asked again next sweep
        Assert.Equal(7_000, (await restarted.AssertBalancedAsync()).ReceivedMsat);
    }

    /// <summary>A mint that speaks just enough of the API to be hostile: garbage restores, or valid signatures for amounts nobody asked.</summary>
    private sealed class HostileMint : IAsyncDisposable
    {
        private readonly WebApplication _app;

        private HostileMint(WebApplication app) => (_app, Url) = (app, app.Urls.First());

        public string Url { get; }

        public static async Task<HostileMint> StartAsync(MintKeyset keyset, bool inflate)
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            var app = builder.Build();
            app.MapGet("/v1/keys/{id}", () => Results.Json(new KeysResponse(
                [new KeysetKeysResponse { Id = keyset.Id, Unit = "sat", Active = true, Keys = keyset.PublicKeysHex }])));
            app.MapPost("/v1/restore", async (HttpRequest request) =>
            {
                if (!inflate)
                {
                    return Results.Text("<html>maintenance</html>", "application/json");
                }

                var asked = await request.ReadFromJsonAsync<RestoreRequest>();
                return Results.Json(new RestoreResponse(asked!.Outputs,
                    [.. asked.Outputs.Select(o => keyset.Sign(1UL << 62, Coinop.Ecash.Crypto.Secp256k1.TryParsePoint(o.B, out var b) ? b : throw new FormatException()))]));
            });
            await app.StartAsync();
            return new HostileMint(app);
        }

        public async ValueTask DisposeAsync()
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }

    /// <summary>A mint that is down: every request to it gets 503 while <see cref="Down"/> is set.</summary>
    private sealed class MintOutage : IStartupFilter
    {
        public volatile bool Down;

        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use(async (context, nextMiddleware) =>
            {
                if (Down && context.Request.Path.StartsWithSegments("/mint"))
                {
                    context.Response.StatusCode = 503;
                    return;
                }

                await nextMiddleware(context);
            });
            next(app);
        };
    }

    private sealed class CountRequests(Func<PathString, bool> match, Action count) : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use(async (context, nextMiddleware) =>
            {
                if (match(context.Request.Path))
                {
                    count();
                }

                await nextMiddleware(context);
            });
            next(app);
        };
    }
}
