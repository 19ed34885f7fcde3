using Coinop.Market.Tests.TestProviders;
using Coinop.TestKit;
using Coinop.Wallet;

namespace Coinop.Market.Tests.Payments;

/// <summary><c>coinop chat</c> against a paid market pays from the local wallet and takes the change back.</summary>
public class ChatPaymentTests
{
    [Fact]
    public async Task Chat_pays_from_the_wallet_whole_or_streamed_and_keeps_the_change()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await PaidMarket.StartAsync();
        await using var provider = await market.Market.ProviderAsync("llama3", ct, script: Scripts.Answer("the answer is 42"));
        using var walletDir = new TempDirectory("coinop-wallet");
        await (await CashuWallet.OpenAsync(walletDir.Path, market.Http, TimeProvider.System, ct)).FundAsync(market.Url, 20, TimeSpan.FromSeconds(30), ct);
        string[] Chat(params string[] extra) => ["chat", "--market", market.Url, "--model", "llama3", "--wallet", walletDir.Path, "--max-tokens", "1000", .. extra, "what is it?"];

        // 1 000 output tokens at 3 msat and the prompt's estimate: 4 sat reserved; the answer costs 26 msat, so 3 come back.
        var (wholeExit, whole) = await PayoutTests.CoinopAsync(Chat());
        var (streamExit, streamed) = await PayoutTests.CoinopAsync(Chat("--stream"));

        Assert.Equal(0, wholeExit);
        Assert.Equal("the answer is 42\ncoinop: paid 1 sat (4 sent, 3 back)\n", whole);
        Assert.Equal(0, streamExit);
        Assert.Equal("the answer is 42\ncoinop: paid 1 sat (4 sent, 3 back)\n", streamed);
        Assert.Equal(18UL, await AvailableAsync(walletDir.Path, market, ct));
        var s = await market.AssertBalancedAsync();
        Assert.Equal(8_000, s.ReceivedMsat);
        Assert.Equal(6_000, s.RefundedMsat);
    }

    [Fact]
    public async Task A_paid_request_that_fails_gives_everything_back_to_the_wallet()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await PaidMarket.StartAsync();
        await using var provider = await market.Market.ProviderAsync("llama3", ct, script: Scripts.Fail());
        using var walletDir = new TempDirectory("coinop-wallet");
        await (await CashuWallet.OpenAsync(walletDir.Path, market.Http, TimeProvider.System, ct)).FundAsync(market.Url, 10, TimeSpan.FromSeconds(30), ct);

        var (exit, output) = await PayoutTests.CoinopAsync("chat", "--market", market.Url, "--model", "llama3", "--wallet", walletDir.Path, "--max-tokens", "10", "hi");

        Assert.Equal(1, exit);
        Assert.Contains("coinop: paid 0 sat (1 sent, 1 back)", output, StringComparison.Ordinal);
        Assert.Contains("coinop: 502 the provider failed", output, StringComparison.Ordinal);
        Assert.Equal(10UL, await AvailableAsync(walletDir.Path, market, ct));

        await market.AssertBalancedAsync();
    }

    [Fact]
    public async Task Chat_sends_at_most_max_sat_and_says_so_when_the_market_asks_more()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await PaidMarket.StartAsync();
        // 30 msat per output token and an 8192-token window: 247 sat reserved for a prompt without --max-tokens.
        await using var provider = await market.Market.ProviderAsync("llama3", ct, inSats: 10_000, outSats: 30_000);
        using var walletDir = new TempDirectory("coinop-wallet");
        await (await CashuWallet.OpenAsync(walletDir.Path, market.Http, TimeProvider.System, ct)).FundAsync(market.Url, 300, TimeSpan.FromSeconds(30), ct);
        string[] Chat(params string[] extra) => ["chat", "--market", market.Url, "--model", "llama3", "--wallet", walletDir.Path, .. extra, "hi"];

        var (refusedExit, refused) = await PayoutTests.CoinopAsync(Chat());

        Assert.Equal(1, refusedExit);
        Assert.Equal("coinop: the market asks 247 sat, more than --max-sat 100: nothing was paid; pass --max-sat 247 to allow it\n", refused);
        Assert.Equal(300UL, await AvailableAsync(walletDir.Path, market, ct));
        Assert.Empty(provider.Jobs);

        var (paidExit, paid) = await PayoutTests.CoinopAsync(Chat("--max-sat", "247"));

        Assert.Equal(0, paidExit);
        Assert.Contains("coinop: paid 1 sat (247 sent, 246 back)", paid, StringComparison.Ordinal);
        Assert.Equal(299UL, await AvailableAsync(walletDir.Path, market, ct));
    }

    [Fact]
    public async Task Chat_without_a_funded_wallet_says_how_to_fund_one()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await PaidMarket.StartAsync();
        await using var provider = await market.Market.ProviderAsync("llama3", ct);
        using var walletDir = new TempDirectory("coinop-wallet");

        var (exit, output) = await PayoutTests.CoinopAsync("chat", "--market", market.Url, "--model", "llama3", "--wallet", walletDir.Path, "hi");

        Assert.Equal(1, exit);
        Assert.StartsWith("coinop: the market asks 25 sat for this request and there is no wallet at ", output, StringComparison.Ordinal);
        Assert.Empty(provider.Jobs);

        await market.AssertBalancedAsync();
    }

    private static async Task<ulong> AvailableAsync(string walletDir, PaidMarket market, CancellationToken ct) =>
        (ulong)(await (await CashuWallet.OpenAsync(walletDir, market.Http, TimeProvider.System, ct)).BalancesAsync(ct)).Sum(b => (long)b.Available);
}
