using Coinop.Ecash.Lightning;
using Coinop.TestKit;
using Coinop.Wallet;

namespace Coinop.Market.Tests.Wallet;

/// <summary>How the wallet learns that the invoice of its mint quote was paid.</summary>
public class WalletMintWaitTests
{
    [Fact]
    public async Task The_wallet_learns_of_the_payment_over_the_mints_websocket_without_polling()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await TestMarket.StartAsync();
        market.Lightning.AutoPay = false;
        using var dir = new TempDirectory("coinop-wallet");
        var wallet = await CashuWallet.OpenAsync(dir.Path, market.Http, TimeProvider.System, ct);
        var quote = await wallet.QuoteMintAsync(market.MintUrl, 8, ct);

        // Polling once an hour: only the NUT-17 notification can end this wait in time.
        var waiting = wallet.FinishMintAsync(market.MintUrl, quote, 8, TimeSpan.FromHours(2), ct, pollInterval: TimeSpan.FromHours(1));
        Assert.False(waiting.IsCompleted);
        market.Lightning.MarkPaid(Bolt11Invoice.Parse(quote.Request).PaymentHashHex);

        var minted = await waiting.WaitAsync(TimeSpan.FromMinutes(2), ct); // a guard against a hang, not a speed check
        Assert.Equal(8UL, minted.Amount);
        Assert.Equal(8UL, (await wallet.BalancesAsync(ct)).Single().Available);
    }
}
