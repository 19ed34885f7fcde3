using Coinop.Ecash;
using Coinop.Ecash.Crypto;
using Coinop.Ecash.Lightning;
using Coinop.Ecash.MintApi;
using Coinop.Ecash.MintClient;
using Coinop.Ecash.Wallet;
using Coinop.TestKit;

namespace Coinop.Market.Tests.TestLightning;

/// <summary>A real <c>coinop market</c> process on a fake LND or Core Lightning node, killed with SIGKILL mid-melt.</summary>
public class LightningCrashTests
{
    /// <summary>Each backend, a payment that succeeds or fails, decided while the market is down or after it is back.</summary>
    public static TheoryData<string, bool, bool> Cases => new()
    {
        { "lnd", true, false }, { "lnd", false, true }, { "cln", true, true }, { "cln", false, false },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task A_market_killed_mid_melt_restarts_and_its_proofs_agree_with_the_payment(string kind, bool succeeds, bool decidedWhileDown)
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDirectory("coinop-ln-crash");
        await using var node = await LightningNodeTests.StartNodeAsync(kind, dir);
        var url = $"http://127.0.0.1:{Ports.GetFree()}";
        string[] args = ["market", "--urls", url, "--data", Path.Combine(dir.Path, "market"), "--lightning", kind,
            .. node is FakeLnd lnd
                ? new[] { "--lnd-url", lnd.Url, "--lnd-macaroon", lnd.MacaroonFile, "--lnd-cert", lnd.CertFile }
                : ["--cln-url", node.Url, "--cln-rune", ((FakeCln)node).Rune, "--cln-cert", node.CertFile]];
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(90) };
        var mint = new CashuMintClient(http, url + "/mint");

        var market = ChildProcess.StartCoinop("market", args);
        await market.WaitForLineAsync("coinop market listening", TimeSpan.FromSeconds(60), ct);
        var quote = await mint.CreateMintQuoteAsync(16, ct);
        node.Settle(Bolt11Invoice.Parse(quote.Request).PaymentHashHex);
        await Eventually.WaitAsync(() => mint.GetMintQuoteAsync(quote.Quote, ct)!, q => q!.State == MintQuoteState.Paid, "the mint quote to be paid", cancellationToken: ct);
        var outputs = BlindedOutputs.Create((await mint.GetActiveKeysetAsync(ct)).Id, Amounts.Split(16));
        var proofs = await mint.UnblindAsync(outputs, (await mint.MintAsync(new MintRequest(quote.Quote, [.. outputs.Select(o => o.Message)]), ct)).Signatures, ct);
        var ys = proofs.Select(p => Convert.ToHexStringLower(Bdhke.Y(p.Secret))).ToList();

        // The payment is in flight at the node when the market dies.
        node.Plan = PayPlan.Hold;
        var invoice = FakeNode.ExternalInvoice(10_000);
        var hash = Bolt11Invoice.Parse(invoice).PaymentHashHex;
        var melt = await mint.CreateMeltQuoteAsync(invoice, ct);
        var meltCall = mint.MeltAsync(new MeltRequest { Quote = melt.Quote, Inputs = proofs }, ct);
        await Eventually.WaitAsync(() => Task.FromResult<bool?>(node.Payments.ContainsKey(hash)), seen => seen == true, "the payment to reach the node", cancellationToken: ct);
        market.KillHard();
        await market.Exited.WaitAsync(TimeSpan.FromSeconds(30), ct);
        await market.DisposeAsync();
        await Assert.ThrowsAnyAsync<Exception>(() => meltCall);

        if (decidedWhileDown)
        {
            // The node settles the payment while the market is down: the restarted market reconciles before it serves,
            // so its very first answer about these proofs is already the node's.
            node.Resolve(hash, succeeds);
        }

        await using var restarted = ChildProcess.StartCoinop("market", args);
        await restarted.WaitForLineAsync("coinop market listening", TimeSpan.FromSeconds(60), ct);
        var first = (await mint.CheckStateAsync(ys, ct)).States;
        if (decidedWhileDown)
        {
            Assert.All(first, s => Assert.Equal(succeeds ? ProofState.Spent : ProofState.Unspent, s.State));
        }
        else
        {
            Assert.All(first, s => Assert.Equal(ProofState.Pending, s.State));

            // The node decides; the restarted market follows.
            node.Resolve(hash, succeeds);
        }
        var settled = await Eventually.WaitAsync(() => mint.GetMeltQuoteAsync(melt.Quote, ct)!, q => q!.State != MeltQuoteState.Pending,
            "the restarted market to settle the melt", cancellationToken: ct);
        var states = (await mint.CheckStateAsync(ys, ct)).States;
        if (succeeds)
        {
            Assert.Equal(MeltQuoteState.Paid, settled.State);
            Assert.Equal(node.Payments[hash].Preimage, settled.PaymentPreimage);
            Assert.All(states, s => Assert.Equal(ProofState.Spent, s.State));
        }
        else
        {
            Assert.Equal(MeltQuoteState.Unpaid, settled.State);
            Assert.All(states, s => Assert.Equal(ProofState.Unspent, s.State));
        }

        Assert.Single(node.Payments); // never paid twice
        Assert.Equal(0, node.Unauthorized);
    }
}
