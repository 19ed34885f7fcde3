using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Coinop.Ecash;
using Coinop.Ecash.MintApi;
using Coinop.Ecash.Wallet;
using Coinop.Market.Mint.Lightning;
using Coinop.Storage;
using Microsoft.Extensions.DependencyInjection;

namespace Coinop.Market.Tests.Payments;

/// <summary>
/// An attacker fires the same credential at once from many connections, hoping two of them pass the check before either
/// records the spend: a balance key refunded twice, a token opening two balances or topping up two, a paid mint quote
/// issued twice, proofs melted into two invoices. Real Kestrel, real concurrent requests, on SQLite and PostgreSQL:
/// exactly one wins, the others get a 4xx, and the ledger's equations hold.
/// </summary>
public class ConcurrentSpendAttackTests
{
    private const int Racers = 8;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [MemberData(nameof(PaidMarket.Dialects), MemberType = typeof(PaidMarket))]
    public async Task Concurrent_refunds_of_one_balance_pay_it_back_once(SqlDialect dialect)
    {
        await using var market = await PaidMarket.StartAsync(dialect);
        var key = (await market.PostJsonAsync("/v1/balance/create", new { token = await market.TokenAsync(50) })).GetProperty("api_key").GetString()!;

        var answers = await Task.WhenAll(Enumerable.Range(0, Racers).Select(_ => SendAsync(market, HttpMethod.Post, "/v1/balance/refund", null, key)));

        var paid = OneWins(answers);
        Assert.Equal(50UL, await market.RedeemAsync(paid.Body.GetProperty("token").GetString()!));
        var s = await market.AssertBalancedAsync();
        Assert.Equal(50_000, s.RefundedMsat);
        Assert.Equal(0, s.BalancesMsat);
    }

    [Theory]
    [MemberData(nameof(PaidMarket.Dialects), MemberType = typeof(PaidMarket))]
    public async Task One_token_sent_to_create_from_many_connections_opens_one_balance(SqlDialect dialect)
    {
        await using var market = await PaidMarket.StartAsync(dialect);
        var token = await market.TokenAsync(40);

        var answers = await Task.WhenAll(Enumerable.Range(0, Racers).Select(_ => SendAsync(market, HttpMethod.Post, "/v1/balance/create", new { token }, null)));

        var opened = OneWins(answers);
        Assert.Equal(40_000, opened.Body.GetProperty("balance_msat").GetInt64());
        var s = await market.AssertBalancedAsync();
        Assert.Equal(40_000, s.ReceivedMsat);
        Assert.Equal(40_000, s.BalancesMsat);
    }

    [Theory]
    [MemberData(nameof(PaidMarket.Dialects), MemberType = typeof(PaidMarket))]
    public async Task One_token_topping_up_many_balances_at_once_credits_one(SqlDialect dialect)
    {
        await using var market = await PaidMarket.StartAsync(dialect);
        var keys = new List<string>();
        for (var i = 0; i < 4; i++)
        {
            keys.Add((await market.PostJsonAsync("/v1/balance/create", new { token = await market.TokenAsync(1) })).GetProperty("api_key").GetString()!);
        }

        var token = await market.TokenAsync(30);
        var answers = await Task.WhenAll(Enumerable.Range(0, Racers).Select(i => SendAsync(market, HttpMethod.Post, "/v1/balance/topup", new { token }, keys[i % keys.Count])));

        OneWins(answers);
        var s = await market.AssertBalancedAsync();
        Assert.Equal(34_000, s.ReceivedMsat);
        Assert.Equal(34_000, s.BalancesMsat);
    }

    [Theory]
    [MemberData(nameof(PaidMarket.Dialects), MemberType = typeof(PaidMarket))]
    public async Task A_paid_mint_quote_redeemed_from_many_connections_with_different_outputs_is_issued_once(SqlDialect dialect)
    {
        await using var market = await PaidMarket.StartAsync(dialect);
        var quote = await market.Mint.CreateMintQuoteAsync(64, Ct);
        var active = await market.Mint.GetActiveKeysetAsync(Ct);

        var issued = await Task.WhenAll(Enumerable.Range(0, Racers).Select(async _ =>
        {
            var outputs = BlindedOutputs.Create(active.Id, Amounts.Split(64));
            try
            {
                var minted = await market.Mint.MintAsync(new MintRequest(quote.Quote, [.. outputs.Select(o => o.Message)]), Ct);
                return (await market.Mint.UnblindAsync(outputs, minted.Signatures, Ct)).Aggregate(0UL, (s, p) => s + p.Amount);
            }
            catch (CashuException)
            {
                return 0UL; // a 400 with a Cashu error; a 5xx would throw HttpRequestException and fail the test
            }
        }));

        Assert.Equal(64UL, Assert.Single(issued, v => v > 0));
    }

    [Theory]
    [MemberData(nameof(PaidMarket.Dialects), MemberType = typeof(PaidMarket))]
    public async Task The_same_proofs_melted_into_many_invoices_at_once_pay_one(SqlDialect dialect)
    {
        await using var market = await PaidMarket.StartAsync(dialect);
        var lightning = market.Services.GetRequiredService<FakeLightningBackend>();
        var proofs = await market.ProofsAsync(64);
        var quotes = new List<string>();
        for (var i = 0; i < Racers; i++)
        {
            quotes.Add((await market.Mint.CreateMeltQuoteAsync(lightning.Invoice(40_000), Ct)).Quote);
        }

        var melted = await Task.WhenAll(quotes.Select(async quote =>
        {
            try
            {
                return (await market.Mint.MeltAsync(new MeltRequest { Quote = quote, Inputs = proofs }, Ct)).State;
            }
            catch (CashuException)
            {
                return MeltQuoteState.Unpaid;
            }
        }));

        Assert.Single(melted, s => s == MeltQuoteState.Paid);
        Assert.All(melted.Where(s => s != MeltQuoteState.Paid), s => Assert.Equal(MeltQuoteState.Unpaid, s));
    }

    [Theory]
    [MemberData(nameof(PaidMarket.Dialects), MemberType = typeof(PaidMarket))]
    public async Task Proofs_swapped_and_melted_and_paid_with_at_once_are_spent_once(SqlDialect dialect)
    {
        await using var market = await PaidMarket.StartAsync(dialect);
        await using var provider = await market.Market.ProviderAsync("llama3", Ct);
        var lightning = market.Services.GetRequiredService<FakeLightningBackend>();
        var proofs = await market.ProofsAsync(64);
        var token = Ecash.Tokens.TokenCodec.EncodeV4(new Ecash.Tokens.Token(market.MintUrl, "sat", proofs));
        var active = await market.Mint.GetActiveKeysetAsync(Ct);
        var melt = (await market.Mint.CreateMeltQuoteAsync(lightning.Invoice(40_000), Ct)).Quote;

        var swap = Task.Run(async () =>
        {
            var outputs = BlindedOutputs.Create(active.Id, Amounts.Split(64));
            try
            {
                await market.Mint.SwapAsync(new SwapRequest(proofs, [.. outputs.Select(o => o.Message)]), Ct);
                return true;
            }
            catch (CashuException)
            {
                return false;
            }
        });
        var meltTask = Task.Run(async () =>
        {
            try
            {
                return (await market.Mint.MeltAsync(new MeltRequest { Quote = melt, Inputs = proofs }, Ct)).State == MeltQuoteState.Paid;
            }
            catch (CashuException)
            {
                return false;
            }
        });
        var create = SendAsync(market, HttpMethod.Post, "/v1/balance/create", new { token }, null);
        var chat = market.ChatAsync(xCashu: token);

        var wins = new List<bool> { await swap, await meltTask, (await create).Status == HttpStatusCode.OK };
        using (var chatAnswer = await chat)
        {
            Assert.True((int)chatAnswer.StatusCode < 500, $"chat answered {(int)chatAnswer.StatusCode}");
            wins.Add(chatAnswer.StatusCode == HttpStatusCode.OK);
        }

        Assert.True((int)(await create).Status < 500);
        Assert.Single(wins, w => w);
        await market.AssertBalancedAsync();
    }

    /// <summary>Exactly one racer got a 200; every other got a 400 (a clear refusal, not a 500 or a second success).</summary>
    private static (HttpStatusCode Status, JsonElement Body) OneWins((HttpStatusCode Status, JsonElement Body)[] answers)
    {
        Assert.All(answers.Where(a => a.Status != HttpStatusCode.OK), a => Assert.Equal(HttpStatusCode.BadRequest, a.Status));
        return Assert.Single(answers, a => a.Status == HttpStatusCode.OK);
    }

    private static async Task<(HttpStatusCode Status, JsonElement Body)> SendAsync(PaidMarket market, HttpMethod method, string path, object? body, string? bearer)
    {
        using var request = new HttpRequestMessage(method, path)
        {
            Content = new StringContent(body is null ? "" : JsonSerializer.Serialize(body), Encoding.UTF8, "application/json"),
        };
        if (bearer is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        }

        using var response = await market.Http.SendAsync(request, Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True((int)response.StatusCode < 500, $"{path} answered {(int)response.StatusCode}: {text}");
        using var doc = JsonDocument.Parse(text); // every answer, refusals included, is JSON
        return (response.StatusCode, doc.RootElement.Clone());
    }
}
