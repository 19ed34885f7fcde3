using Coinop.Market.Mint.Lightning;
using Coinop.Wallet;
using Microsoft.Extensions.DependencyInjection;

namespace Coinop.Market.Tests.Payments;

/// <summary><c>coinop provider payout --invoice</c>: earnings paid straight to a Lightning invoice, change kept by the provider.</summary>
public class InvoicePayoutTests
{
    [Fact]
    public async Task Payout_to_an_invoice_pays_it_from_the_earnings_and_keeps_the_unused_fee_reserve_in_the_providers_wallet()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await PaidMarket.StartAsync(configure: PayoutTests.AllowDearProviders);
        await using var provider = await market.Market.ProviderAsync("llama3", ct, inSats: 200_000, outSats: 600_000);
        await PayoutTests.EarnAsync(market, requests: 3); // 14 sat payable
        using var providerDir = PayoutTests.ProviderDir(provider.Key);
        var lightning = market.Services.GetRequiredService<FakeLightningBackend>();
        var invoice = lightning.Invoice(5_000); // someone else's invoice of 5 sat, not a quote of this mint

        var (exit, output) = await PayoutTests.CoinopAsync("provider", "payout", "--market", market.Url, "--data", providerDir.Path, "--invoice", invoice);

        Assert.True(exit == 0, output);
        Assert.Contains("Paying 5 sat with a fee reserve of up to 1 sat", output, StringComparison.Ordinal);
        Assert.Contains("Paid 5 sat (routing fee 0 sat)", output, StringComparison.Ordinal);
        var s = await market.AssertBalancedAsync();
        Assert.Equal(6_000, s.PaidOutMsat); // the invoice and its fee reserve
        var wallet = await CashuWallet.OpenAsync(Path.Combine(providerDir.Path, "wallet"), market.Http, TimeProvider.System, ct);
        Assert.Equal(1UL, (await wallet.BalancesAsync(ct)).Single().Available); // the unused reserve, kept
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(providerDir.Path, "wallet"), "payout-*.token"));

        // The next payout uses that change first and takes only the rest from the earnings.
        var (again, againOutput) = await PayoutTests.CoinopAsync("provider", "payout", "--market", market.Url, "--data", providerDir.Path,
            "--invoice", lightning.Invoice(3_000));
        Assert.True(again == 0, againOutput);
        Assert.Equal(9_000, (await market.AssertBalancedAsync()).PaidOutMsat);

        var (bad, badOutput) = await PayoutTests.CoinopAsync("provider", "payout", "--market", market.Url, "--data", providerDir.Path, "--invoice", "lnbc1nonsense");
        Assert.Equal(1, bad);
        Assert.Single(badOutput.Trim().Split('\n'));
    }
}
