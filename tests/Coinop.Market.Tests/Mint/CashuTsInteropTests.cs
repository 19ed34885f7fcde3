using System.Text.Json.Nodes;
using Coinop.TestKit;

namespace Coinop.Market.Tests.Mint;

/// <summary>An independent wallet implementation (cashu-ts from npm, run by node) against our mint over HTTP.</summary>
public class CashuTsInteropTests
{
    [Fact]
    public async Task Cashu_ts_mints_sends_receives_melts_subscribes_and_verifies_dleq_against_our_mint()
    {
        var interop = Path.Combine(RepoPaths.Root, "tests", "interop");
        Assert.True(Directory.Exists(Path.Combine(interop, "node_modules", "@cashu", "cashu-ts")),
            "cashu-ts is not installed: run 'npm ci' in tests/interop (./test.sh does)");
        await using var market = await TestMarket.StartAsync();
        var coinopToken = await market.CashuMint.IssueAsync(50, TestContext.Current.CancellationToken);

        await using var node = ChildProcess.Start("cashu-ts", "node", ["wallet-interop.mjs", market.MintUrl, coinopToken.Token], workingDirectory: interop);
        var exit = await node.WaitForExitAsync(TimeSpan.FromMinutes(2));
        var line = node.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault(l => l.StartsWith('{')) ?? "";
        Assert.True(exit == 0, node.Output);
        var result = JsonNode.Parse(line)!;
        Assert.True(result["ok"]!.GetValue<bool>(), node.Output);
        Assert.Equal("64", result["minted"]!.GetValue<string>());
        Assert.Equal("50", result["coinopReceived"]!.GetValue<string>());
        Assert.NotEqual("accepted", result["doubleSpend"]!.GetValue<string>());
        Assert.Equal("mint_quote,proof_state,melt_quote", result["subscriptions"]!.GetValue<string>()); // NUT-17 over the WebSocket
        Assert.Equal("8", result["lockedMinted"]!.GetValue<string>()); // NUT-20

        // And the other way round: our wallet receives a cashu-ts token (short keyset ids, DLEQ checked).
        using var dir = new TempDirectory("coinop-wallet");
        var wallet = await Coinop.Wallet.CashuWallet.OpenAsync(dir.Path, market.Http, TimeProvider.System, TestContext.Current.CancellationToken);
        Assert.Equal(5UL, await wallet.ReceiveAsync(result["tokenForCoinop"]!.GetValue<string>(), TestContext.Current.CancellationToken));
    }
}
