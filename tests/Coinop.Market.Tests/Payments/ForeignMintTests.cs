using System.Net;
using System.Text.Json;
using Coinop.Ecash.Tokens;
using Coinop.Market.Payments;
using Coinop.Storage;
using Coinop.Storage.Payments;
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
        var change = TokenCodec.Decode(response.Headers.GetValues(PaidInferenceBilling.HeaderName).Single());
        Assert.Equal(market.MintUrl, change.Mint); // change is always ecash of the market's own mint
        Assert.Equal(5UL, change.Amount);
        var s = await market.AssertBalancedAsync();
        Assert.Equal(6_000, s.ReceivedMsat);
        // The consumer's proofs are spent at their mint; the market holds fresh ones of the same value.
        await CashuAssert.FailsWith(11001, () => other.RedeemAsync(token));
        var held = await market.Database.ReadAsync(c => c.ExecuteScalarAsync<long>("SELECT SUM(amount) FROM foreign_proofs"), ct);
        Assert.Equal(6, held);
        Assert.Equal(ForeignPaymentState.Credited,
            (await market.Services.GetRequiredService<IForeignPaymentStore>().FindAsync(PaymentKeys.TokenKey(TokenCodec.Decode(token)), ct))!.State);
    }

    [Fact]
    public async Task A_token_of_an_accepted_mint_opens_a_balance()
    {
        await using var other = await PaidMarket.StartAsync();
        await using var market = await PaidMarket.StartAsync(configure: o => o.AcceptMints = [other.MintUrl]);

        var created = await market.PostJsonAsync("/v1/balance/create", new { token = await other.TokenAsync(9) });

        Assert.Equal(9_000, created.GetProperty("balance_msat").GetInt64());
        var refund = await market.PostJsonAsync("/v1/balance/refund", null, created.GetProperty("api_key").GetString());
        Assert.Equal(9UL, await market.RedeemAsync(refund.GetProperty("token").GetString()!));

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
