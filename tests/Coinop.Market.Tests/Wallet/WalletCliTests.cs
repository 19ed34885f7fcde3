using System.Text.Json.Nodes;
using Coinop.TestKit;

namespace Coinop.Market.Tests.Wallet;

/// <summary>The <c>coinop wallet</c> and <c>coinop market rotate-keyset</c> commands as real child processes (build src/Coinop.Cli first).</summary>
public class WalletCliTests
{
    [Fact]
    public async Task Wallet_commands_mint_send_receive_and_report_balances()
    {
        await using var market = await TestMarket.StartAsync();
        using var dirs = new TempDirectory("coinop-cli-wallets");
        var alice = dirs.Sub("alice");
        var bob = dirs.Sub("bob");

        var mint = await RunAsync(["wallet", "--data", alice, "mint", "50", "--mint", market.Url]);
        Assert.Equal(0, mint.Exit);
        Assert.Contains("Invoice: lnbc", mint.Output, StringComparison.Ordinal);
        Assert.Contains($"Paid. Minted 50 sat at {market.MintUrl}", mint.Output, StringComparison.Ordinal);

        var balance = await RunAsync(["wallet", "--data", alice, "balance", "--json"]);
        Assert.Equal(50UL, JsonNode.Parse(balance.Output)!["total_sat"]!.GetValue<ulong>());

        var send = await RunAsync(["wallet", "--data", alice, "send", "20"]);
        Assert.Equal(0, send.Exit);
        var token = send.Output.Trim();
        Assert.StartsWith("cashuB", token, StringComparison.Ordinal);

        var receive = await RunAsync(["wallet", "receive", token, "--data", bob]);
        Assert.Equal("Received 20 sat", receive.Output.Trim());
        var again = await RunAsync(["wallet", "--data", bob, "receive", token]);
        Assert.Equal(1, again.Exit);
        Assert.Contains("already spent (code 11001)", again.Output, StringComparison.Ordinal);
        Assert.Single(again.Output.Trim().Split('\n'));

        var table = await RunAsync(["wallet", "--data", alice, "balance"]);
        Assert.Contains(market.MintUrl, table.Output, StringComparison.Ordinal);
        Assert.Contains("Total: 30 sat", table.Output, StringComparison.Ordinal);
        var history = await RunAsync(["wallet", "--data", alice, "history"]);
        Assert.Contains("send", history.Output, StringComparison.Ordinal);
        Assert.Contains("mint", history.Output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("receive,nonsense", 1, "not a Cashu token")]
    [InlineData("send,0", 2, "positive whole number")]
    [InlineData("send,5", 1, "no mint in this wallet holds 5 sat")]
    [InlineData("mint,5,--mint,ftp://x", 2, "not an http(s) URL")]
    [InlineData("mint,5", 2, "--mint")]
    public async Task Wallet_errors_are_one_line_and_a_non_zero_exit(string args, int exit, string message)
    {
        using var dir = new TempDirectory("coinop-cli-wallet");
        var result = await RunAsync(["wallet", "--data", dir.Path, .. args.Split(',')]);
        Assert.Equal(exit, result.Exit);
        Assert.Contains(message, result.Output, StringComparison.Ordinal);
        Assert.Single(result.Output.Trim().Split('\n'));
    }

    [Fact]
    public async Task Rotate_keyset_takes_effect_in_a_running_market_without_a_restart()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await TestMarket.StartAsync();
        var before = await market.Mint.GetActiveKeysetAsync(ct);
        var rotate = await RunAsync(["market", "rotate-keyset", "--data", market.DataDir, "--input-fee-ppk", "250"]);
        Assert.Equal(0, rotate.Exit);
        var after = await market.Mint.GetActiveKeysetAsync(ct);
        Assert.NotEqual(before.Id, after.Id);
        Assert.Equal(250UL, after.InputFeePpk);
        Assert.Contains(after.Id, rotate.Output, StringComparison.Ordinal);
        var missing = await RunAsync(["market", "rotate-keyset", "--data", Path.Combine(market.DataDir, "nope")]);
        Assert.Equal(1, missing.Exit);
    }

    private static async Task<(int Exit, string Output)> RunAsync(string[] args)
    {
        await using var process = ChildProcess.StartCoinop("coinop " + string.Join(' ', args.Take(2)), args);
        var exit = await process.WaitForExitAsync(TimeSpan.FromMinutes(2));
        return (exit, process.Output);
    }
}
