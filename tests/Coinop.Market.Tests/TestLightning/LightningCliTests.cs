using System.Text.Json.Nodes;
using Coinop.Ecash.Lightning;
using Coinop.TestKit;

namespace Coinop.Market.Tests.TestLightning;

/// <summary>
/// The users' paths for real money as real processes: <c>coinop market --lightning lnd</c> on a fake LND, and
/// <c>coinop wallet mint/melt</c> against it (the invoice paid on the node, an outside invoice paid from ecash).
/// </summary>
public class LightningCliTests
{
    [Fact]
    public async Task Wallet_mint_waits_for_the_node_to_see_the_invoice_paid_and_wallet_melt_pays_an_invoice_keeping_the_change()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDirectory("coinop-ln-cli");
        await using var node = await LightningNodeTests.StartNodeAsync("lnd", dir);
        var lnd = (FakeLnd)node;
        var url = $"http://127.0.0.1:{Ports.GetFree()}";
        await using var market = ChildProcess.StartCoinop("market", ["market", "--urls", url, "--data", Path.Combine(dir.Path, "market"),
            "--lightning", "lnd", "--lnd-url", lnd.Url, "--lnd-macaroon", lnd.MacaroonFile, "--lnd-cert", lnd.CertFile]);
        await market.WaitForLineAsync("coinop market listening", TimeSpan.FromSeconds(60), ct);
        var wallet = dir.Sub("wallet");

        // The wallet shows the invoice (and a QR code) and waits until the node says it is paid.
        await using (var mint = ChildProcess.StartCoinop("wallet mint", ["wallet", "--data", wallet, "mint", "21", "--market", url]))
        {
            var line = await mint.WaitForLineAsync(l => l.StartsWith("Invoice: ", StringComparison.Ordinal), TimeSpan.FromSeconds(60), ct);
            var invoice = Bolt11Invoice.Parse(line["Invoice: ".Length..].Trim());
            Assert.Equal(21_000UL, invoice.AmountMsat);
            Assert.False(mint.HasExited, "the wallet minted before the invoice was paid");
            node.Settle(invoice.PaymentHashHex);
            Assert.Equal(0, await mint.WaitForExitAsync(TimeSpan.FromSeconds(60)));
            Assert.Contains("Paid. Minted 21 sat", mint.Output, StringComparison.Ordinal);
            Assert.Contains($"Balance at {url}/mint: 21 sat", mint.Output, StringComparison.Ordinal);
            Assert.Contains("█", mint.Output, StringComparison.Ordinal); // the QR code
        }

        // Paying an outside invoice: the fee reserve is shown first, the routing fee (1 sat) is paid, the rest comes back.
        node.Plan = PayPlan.Succeed;
        node.FeeMsat = 0;
        var outside = FakeNode.ExternalInvoice(10_000);
        var (exit, output) = await RunAsync(["wallet", "--data", wallet, "melt", outside]);
        Assert.Equal(0, exit);
        Assert.Contains("Paying 10 sat with a fee reserve of up to 1 sat", output, StringComparison.Ordinal);
        var paid = node.Payments[Bolt11Invoice.Parse(outside).PaymentHashHex];
        Assert.Equal("complete", paid.Status);
        Assert.Contains($"Preimage: {paid.Preimage}", output, StringComparison.Ordinal);
        var balance = await RunAsync(["wallet", "--data", wallet, "balance", "--json"]);
        Assert.Equal(11UL, JsonNode.Parse(balance.Output)!["total_sat"]!.GetValue<ulong>()); // 21 - 10, the unused reserve kept as change

        // More than the wallet holds: one line, non-zero, nothing paid.
        var tooMuch = FakeNode.ExternalInvoice(50_000);
        var refused = await RunAsync(["wallet", "--data", wallet, "melt", tooMuch]);
        Assert.Equal(1, refused.Exit);
        Assert.Contains("not enough ecash", refused.Output, StringComparison.Ordinal);
        Assert.False(node.Payments.ContainsKey(Bolt11Invoice.Parse(tooMuch).PaymentHashHex));
        Assert.Equal(0, node.Unauthorized);
    }

    [Fact]
    public async Task A_demo_money_market_refuses_to_accept_another_mints_ecash()
    {
        using var dir = new TempDirectory("coinop-ln-cli");
        var (exit, output) = await RunAsync(["market", "--data", dir.Path, "--urls", $"http://127.0.0.1:{Ports.GetFree()}", "--accept-mint", "https://mint.example"]);
        Assert.Equal(2, exit);
        Assert.Contains("--accept-mint needs a real Lightning backend", output, StringComparison.Ordinal);
        Assert.Single(output.Trim().Split('\n'));
    }

    private static async Task<(int Exit, string Output)> RunAsync(string[] args)
    {
        await using var process = ChildProcess.StartCoinop("coinop " + string.Join(' ', args.Take(2)), args);
        var exit = await process.WaitForExitAsync(TimeSpan.FromMinutes(2));
        return (exit, process.Output);
    }
}
