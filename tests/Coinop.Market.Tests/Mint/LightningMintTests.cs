using System.Net;
using System.Text.Json.Nodes;
using Coinop.Ecash.Crypto;
using Coinop.Ecash.Lightning;
using Coinop.Ecash.MintApi;
using Coinop.Ecash.Wallet;
using Coinop.Market.Mint;
using Microsoft.Extensions.DependencyInjection;

namespace Coinop.Market.Tests.Mint;

/// <summary>The mint's Lightning side: real invoices, one payment per invoice, internal settlement, limits, a node that is down, demo labels.</summary>
public class LightningMintTests
{
    [Fact]
    public async Task The_fake_backend_issues_real_signed_bolt11_invoices_for_the_quoted_amount()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await TestMarket.StartAsync();
        var quote = await market.Mint.CreateMintQuoteAsync(21, ct);
        var invoice = Bolt11Invoice.Parse(quote.Request);
        Assert.Equal(21_000UL, invoice.AmountMsat);
        Assert.Equal(Bolt11Network.Mainnet, invoice.Network);
        Assert.Equal(33, invoice.PayeeNodeId.Length);
        Assert.True(invoice.ExpiresAt > DateTimeOffset.UtcNow);
    }

    [Theory]
    [MemberData(nameof(TestMarket.Dialects), MemberType = typeof(TestMarket))]
    public async Task An_invoice_is_paid_once_even_through_two_quotes_and_two_market_nodes(Storage.SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        var database = dialect == Storage.SqlDialect.Postgres ? await TestMarket.CreatePostgresDatabaseAsync() : null;
        using var dir = new Coinop.TestKit.TempDirectory("coinop-market");
        await using var a = await TestMarket.StartAsync(dialect, dataDir: dir, postgresDatabase: database);
        var invoice = a.Lightning.Invoice(8_000);
        var first = await a.Mint.CreateMeltQuoteAsync(invoice, ct);
        var second = await a.Mint.CreateMeltQuoteAsync(invoice, ct);
        var proofsA = await a.MintProofsAsync(9);
        var proofsB = await a.MintProofsAsync(9);

        // The first melt's payment hangs (the node went away mid-call): the store holds its payment hash.
        a.Lightning.LoseConnectionOnPay = true;
        Assert.Equal(MeltQuoteState.Pending, (await a.Mint.MeltAsync(new MeltRequest { Quote = first.Quote, Inputs = proofsA }, ct)).State);
        a.Lightning.LoseConnectionOnPay = false;
        await CashuAssert.FailsWith(CashuErrorCode.QuotePending, () => a.Mint.MeltAsync(new MeltRequest { Quote = second.Quote, Inputs = proofsB }, ct));
        if (dialect == Storage.SqlDialect.Postgres)
        {
            // Another node on the same store refuses it too (started last: disposing a node drops the test database).
            var b = await TestMarket.StartAsync(dialect, postgresDatabase: database);
            try
            {
                await CashuAssert.FailsWith(CashuErrorCode.QuotePending, () => b.Mint.MeltAsync(new MeltRequest { Quote = second.Quote, Inputs = proofsB }, ct));
            }
            finally
            {
                await b.StopAsync();
            }
        }

        // The refused melt took nothing.
        var ys = proofsB.Select(p => Convert.ToHexStringLower(Bdhke.Y(p.Secret))).ToList();
        Assert.All((await a.Mint.CheckStateAsync(ys, ct)).States, s => Assert.Equal(ProofState.Unspent, s.State));
        Assert.Equal(MeltQuoteState.Unpaid, (await a.Mint.GetMeltQuoteAsync(second.Quote, ct)).State);
    }

    [Fact]
    public async Task A_paid_invoice_cannot_be_quoted_again()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await TestMarket.StartAsync();
        var invoice = market.Lightning.Invoice(4_000);
        var quote = await market.Mint.CreateMeltQuoteAsync(invoice, ct);
        Assert.Equal(MeltQuoteState.Paid, (await market.Mint.MeltAsync(new MeltRequest { Quote = quote.Quote, Inputs = await market.MintProofsAsync(5) }, ct)).State);
        await CashuAssert.FailsWith(CashuErrorCode.InvoiceAlreadyPaid, () => market.Mint.CreateMeltQuoteAsync(invoice, ct));
    }

    [Fact]
    public async Task Melting_an_invoice_of_this_mint_settles_internally_with_no_fee_and_the_payee_can_mint()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await TestMarket.StartAsync();
        market.Lightning.AutoPay = false; // only the internal settlement can pay the payee's quote
        var payee = await market.Mint.CreateMintQuoteAsync(30, ct);
        market.Lightning.AutoPay = true;
        var proofs = await market.MintProofsAsync(32);
        market.Lightning.AutoPay = false;
        market.Lightning.FailPaymentsWith = "Lightning must not be used for an internal payment";

        var melt = await market.Mint.CreateMeltQuoteAsync(payee.Request, ct);
        Assert.Equal(0UL, melt.FeeReserve);
        var active = await market.Mint.GetActiveKeysetAsync(ct);
        var blanks = BlindedOutputs.Create(active.Id, [1, 1]);
        var paid = await market.Mint.MeltAsync(new MeltRequest { Quote = melt.Quote, Inputs = proofs, Outputs = [.. blanks.Select(b => b.Message)] }, ct);
        Assert.Equal(MeltQuoteState.Paid, paid.State);
        Assert.Equal(2UL, (await market.Mint.UnblindAsync(blanks, paid.Change!, ct)).Aggregate(0UL, (s, p) => s + p.Amount));
        Assert.Equal(MintQuoteState.Paid, (await market.Mint.GetMintQuoteAsync(payee.Quote, ct)).State);
        var outputs = BlindedOutputs.Create(active.Id, Ecash.Amounts.Split(30));
        var minted = await market.Mint.MintAsync(new MintRequest(payee.Quote, [.. outputs.Select(o => o.Message)]), ct);
        Assert.Equal(30UL, (await market.Mint.UnblindAsync(outputs, minted.Signatures, ct)).Aggregate(0UL, (s, p) => s + p.Amount));
    }

    [Fact]
    public async Task Operator_limits_bound_mint_and_melt_quotes_and_the_outstanding_total()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await TestMarket.StartAsync(services: s => s.Configure<MintOptions>(o =>
        {
            o.MintMaxSat = 100;
            o.MeltMaxSat = 50;
            o.MaxOutstandingSat = 150;
        }));
        await CashuAssert.FailsWith(CashuErrorCode.AmountOutOfLimitRange, () => market.Mint.CreateMintQuoteAsync(101, ct));
        var proofs = await market.MintProofsAsync(100);
        await market.Mint.CreateMintQuoteAsync(50, ct); // open quotes count: 150 outstanding now
        await CashuAssert.FailsWith(CashuErrorCode.AmountOutOfLimitRange, () => market.Mint.CreateMintQuoteAsync(1, ct));
        await CashuAssert.FailsWith(CashuErrorCode.AmountOutOfLimitRange, () => market.Mint.CreateMeltQuoteAsync(market.Lightning.Invoice(51_000), ct));

        // Melting brings the total down again.
        var melt = await market.Mint.CreateMeltQuoteAsync(market.Lightning.Invoice(40_000), ct);
        await market.Mint.MeltAsync(new MeltRequest { Quote = melt.Quote, Inputs = proofs }, ct);
        await market.Mint.CreateMintQuoteAsync(40, ct);

        var info = await market.Mint.GetInfoAsync(ct);
        Assert.Equal(100, info.Nuts!["4"]["methods"]![0]!["max_amount"]!.GetValue<long>());
        Assert.Equal(50, info.Nuts["5"]["methods"]![0]!["max_amount"]!.GetValue<long>());
    }

    /// <summary>The cases nutshell fixed: no melt marked paid when the payment failed, no proofs shown spent while the node is down.</summary>
    [Fact]
    public async Task A_node_that_is_down_makes_mint_and_melt_answer_503_and_leaves_the_proofs_unspent()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await TestMarket.StartAsync();
        var proofs = await market.MintProofsAsync(16);
        var melt = await market.Mint.CreateMeltQuoteAsync(market.Lightning.Invoice(10_000), ct);
        market.Lightning.Unreachable = true;

        using (var response = await market.Http.PostAsync(market.MintUrl + "/v1/mint/quote/bolt11", Json("""{"amount":10,"unit":"sat"}"""), ct))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
            Assert.Contains("Lightning", JsonNode.Parse(await response.Content.ReadAsStringAsync(ct))!["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        }

        var body = System.Text.Json.JsonSerializer.Serialize(new MeltRequest { Quote = melt.Quote, Inputs = proofs }, MintEndpointsJson);
        using (var response = await market.Http.PostAsync(market.MintUrl + "/v1/melt/bolt11", Json(body), ct))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        }

        var ys = proofs.Select(p => Convert.ToHexStringLower(Bdhke.Y(p.Secret))).ToList();
        Assert.All((await market.Mint.CheckStateAsync(ys, ct)).States, s => Assert.Equal(ProofState.Unspent, s.State));
        Assert.Equal(MeltQuoteState.Unpaid, (await market.Mint.GetMeltQuoteAsync(melt.Quote, ct)).State);

        // Back up: the same melt goes through.
        market.Lightning.Unreachable = false;
        Assert.Equal(MeltQuoteState.Paid, (await market.Mint.MeltAsync(new MeltRequest { Quote = melt.Quote, Inputs = proofs }, ct)).State);
    }

    [Fact]
    public async Task Demo_money_is_labelled_in_mint_info_and_healthz()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await TestMarket.StartAsync();
        var info = await market.Mint.GetInfoAsync(ct);
        Assert.Contains("DEMO MONEY", info.Name, StringComparison.Ordinal);
        Assert.Contains("DEMO MONEY", info.Description, StringComparison.Ordinal);
        var health = JsonNode.Parse(await market.Http.GetStringAsync(market.Url + "/healthz", ct))!;
        Assert.True(health["demo_money"]!.GetValue<bool>());
        Assert.Equal("fake", health["lightning"]!.GetValue<string>());
    }

    private static readonly System.Text.Json.JsonSerializerOptions MintEndpointsJson = new(System.Text.Json.JsonSerializerDefaults.General);

    private static StringContent Json(string body) => new(body, System.Text.Encoding.UTF8, "application/json");
}
