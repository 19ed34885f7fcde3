using Coinop.Ecash;
using Coinop.Ecash.Crypto;
using Coinop.Ecash.Lightning;
using Coinop.Ecash.MintApi;
using Coinop.Ecash.Wallet;
using Coinop.Market.Mint;
using Coinop.Storage.Mint;
using Coinop.TestKit;
using Microsoft.Extensions.DependencyInjection;

namespace Coinop.Market.Tests.TestLightning;

/// <summary>The mint against protocol-faithful fake LND and Core Lightning nodes over HTTPS (self-signed, pinned).</summary>
public class LightningNodeTests
{
    public static TheoryData<string> Nodes => ["lnd", "cln"];

    [Theory]
    [MemberData(nameof(Nodes))]
    public async Task Invoices_come_from_the_node_and_its_stream_marks_them_paid_resuming_after_a_drop(string kind)
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDirectory("coinop-ln");
        await using var node = await StartNodeAsync(kind, dir);
        await using var market = await StartMarketAsync(kind, node);
        var quotes = market.App.Services.GetRequiredService<IMintQuoteStore>();

        var quote = await market.Mint.CreateMintQuoteAsync(21, ct);
        var invoice = Bolt11Invoice.Parse(quote.Request);
        Assert.Equal(Bolt11Network.Regtest, invoice.Network);
        Assert.Equal(21_000UL, invoice.AmountMsat);
        Assert.True(node.Invoices.ContainsKey(invoice.PaymentHashHex));

        // Paid on the node: the stream (not a wallet asking) marks the quote PAID.
        node.Settle(invoice.PaymentHashHex);
        await Eventually.WaitAsync(() => quotes.FindMintQuoteAsync(quote.Quote, ct), q => q?.State == MintQuoteState.Paid, "the stream to mark the quote paid", cancellationToken: ct);

        // The stream breaks after every event; the mint resumes from the index it stored and misses nothing.
        node.DropStreamAfterEachEvent = true;
        var second = await market.Mint.CreateMintQuoteAsync(5, ct);
        var third = await market.Mint.CreateMintQuoteAsync(6, ct);
        node.Settle(Bolt11Invoice.Parse(second.Request).PaymentHashHex);
        node.Settle(Bolt11Invoice.Parse(third.Request).PaymentHashHex);
        foreach (var q in new[] { second, third })
        {
            await Eventually.WaitAsync(() => quotes.FindMintQuoteAsync(q.Quote, ct), r => r?.State == MintQuoteState.Paid, "the resumed stream", cancellationToken: ct);
        }

        Assert.True(node.StreamResumes.Count >= 2, "the mint never reconnected the stream"); // and each time from the index it stored
        Assert.All(node.StreamResumes.Skip(1), r => Assert.NotEqual("0", r));
        var outputs = BlindedOutputs.Create((await market.Mint.GetActiveKeysetAsync(ct)).Id, Amounts.Split(21));
        var minted = await market.Mint.MintAsync(new MintRequest(quote.Quote, [.. outputs.Select(o => o.Message)]), ct);
        Assert.Equal(21UL, (await market.Mint.UnblindAsync(outputs, minted.Signatures, ct)).Aggregate(0UL, (s, p) => s + p.Amount));
        Assert.Equal(0, node.Unauthorized);
    }

    [Theory]
    [MemberData(nameof(Nodes))]
    public async Task A_melt_in_flight_answers_pending_then_settles_with_its_fee_change_and_a_failed_one_releases(string kind)
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDirectory("coinop-ln");
        await using var node = await StartNodeAsync(kind, dir);
        await using var market = await StartMarketAsync(kind, node, o =>
        {
            o.MeltWaitTime = TimeSpan.FromSeconds(1);
            o.PendingMeltRecoveryAfter = TimeSpan.FromSeconds(1);
        });
        var proofs = await MintViaNodeAsync(market, node, 16);
        var active = (await market.Mint.GetActiveKeysetAsync(ct)).Id;

        // In flight: the melt answers PENDING and its proofs are locked.
        node.Plan = PayPlan.Hold;
        var invoice = FakeNode.ExternalInvoice(10_000);
        var quote = await market.Mint.CreateMeltQuoteAsync(invoice, ct);
        Assert.Equal(1UL, quote.FeeReserve);
        var blanks = BlindedOutputs.Create(active, [1, 1, 1]);
        var melt = await market.Mint.MeltAsync(new MeltRequest { Quote = quote.Quote, Inputs = proofs, Outputs = [.. blanks.Select(b => b.Message)] }, ct);
        Assert.Equal(MeltQuoteState.Pending, melt.State);
        var ys = proofs.Select(p => Convert.ToHexStringLower(Bdhke.Y(p.Secret))).ToList();
        Assert.All((await market.Mint.CheckStateAsync(ys, ct)).States, s => Assert.Equal(ProofState.Pending, s.State));

        // It succeeds at no routing fee: spent, the preimage, and the unused reserve back as change.
        var hash = Bolt11Invoice.Parse(invoice).PaymentHashHex;
        node.FeeMsat = 0;
        node.Resolve(hash, succeed: true);
        var paid = await Eventually.WaitAsync(() => market.Mint.GetMeltQuoteAsync(quote.Quote, ct)!, q => q!.State != MeltQuoteState.Pending, "the melt to settle", cancellationToken: ct);
        Assert.Equal(MeltQuoteState.Paid, paid.State);
        Assert.Equal(node.Payments[hash].Preimage, paid.PaymentPreimage);
        Assert.Equal(6UL, (await market.Mint.UnblindAsync(blanks, paid.Change!, ct)).Aggregate(0UL, (s, p) => s + p.Amount)); // 16 - 10, no fee
        Assert.All((await market.Mint.CheckStateAsync(ys, ct)).States, s => Assert.Equal(ProofState.Spent, s.State));

        // A payment that definitely fails releases its proofs.
        node.Plan = PayPlan.Fail;
        var more = await MintViaNodeAsync(market, node, 8);
        var failing = await market.Mint.CreateMeltQuoteAsync(FakeNode.ExternalInvoice(5_000), ct);
        await CashuAssert.FailsWith(CashuErrorCode.LightningPaymentFailed, () => market.Mint.MeltAsync(new MeltRequest { Quote = failing.Quote, Inputs = more }, ct));
        var moreYs = more.Select(p => Convert.ToHexStringLower(Bdhke.Y(p.Secret))).ToList();
        Assert.All((await market.Mint.CheckStateAsync(moreYs, ct)).States, s => Assert.Equal(ProofState.Unspent, s.State));
        Assert.Equal(0, node.Unauthorized);
    }

    public static async Task<FakeNode> StartNodeAsync(string kind, TempDirectory dir)
    {
        FakeNode node = kind == "lnd" ? new FakeLnd(dir.Path) : new FakeCln(dir.Path);
        await node.StartAsync();
        return node;
    }

    private static Task<TestMarket> StartMarketAsync(string kind, FakeNode node, Action<MintOptions>? mint = null) =>
        TestMarket.StartAsync(
            services: s =>
            {
                if (mint is not null)
                {
                    s.Configure(mint);
                }
            },
            options: o =>
            {
                o.Lightning = kind;
                if (node is FakeLnd lnd)
                {
                    (o.LndUrl, o.LndMacaroon, o.LndCert) = (lnd.Url, lnd.MacaroonFile, lnd.CertFile);
                }
                else
                {
                    (o.ClnUrl, o.ClnRune, o.ClnCert) = (node.Url, ((FakeCln)node).Rune, node.CertFile);
                }
            });

    private static async Task<List<Proof>> MintViaNodeAsync(TestMarket market, FakeNode node, ulong amount)
    {
        var ct = TestContext.Current.CancellationToken;
        var quote = await market.Mint.CreateMintQuoteAsync(amount, ct);
        node.Settle(Bolt11Invoice.Parse(quote.Request).PaymentHashHex);
        await Eventually.WaitAsync(() => market.Mint.GetMintQuoteAsync(quote.Quote, ct)!, q => q!.State == MintQuoteState.Paid, "the quote to be paid", cancellationToken: ct);
        var outputs = BlindedOutputs.Create((await market.Mint.GetActiveKeysetAsync(ct)).Id, Amounts.Split(amount));
        var minted = await market.Mint.MintAsync(new MintRequest(quote.Quote, [.. outputs.Select(o => o.Message)]), ct);
        return await market.Mint.UnblindAsync(outputs, minted.Signatures, ct);
    }
}
