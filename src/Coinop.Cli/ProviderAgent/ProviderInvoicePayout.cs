using System.Globalization;
using System.Net;
using System.Text.Json;
using Coinop.Cli.Shared;
using Coinop.Ecash.MintApi;
using Coinop.Wallet;

namespace Coinop.Cli.ProviderAgent;

/// <summary>
/// <c>coinop provider payout --invoice BOLT11</c>: the provider's earnings paid to a Lightning invoice. The market's
/// mint quotes the invoice (amount and fee reserve); the provider takes that much of its earnings as ecash into its
/// own wallet (<c>&lt;data&gt;/wallet</c>) and melts it there, so any step that fails leaves the money in that wallet
/// (never in the air): a payout token is written to a file before it is received, and such files are received first
/// on the next run. Unused fee reserve comes back as change into the same wallet and pays part of the next payout.
/// </summary>
internal static class ProviderInvoicePayout
{
    public static async Task<int> RunAsync(string marketUrl, string dataDir, string bolt11, bool json, CancellationToken cancellationToken)
    {
        using var key = ProviderMoneyCommands.LoadKey(dataDir);
        var walletDir = Path.Combine(dataDir, "wallet");
        using var mintHttp = new HttpClient { Timeout = TimeSpan.FromMinutes(2) };
        using var http = new HttpClient { BaseAddress = new Uri(marketUrl + "/"), Timeout = TimeSpan.FromSeconds(30) };
        try
        {
            var wallet = await CashuWallet.OpenAsync(walletDir, mintHttp, TimeProvider.System, cancellationToken);
            await ReceiveLeftoversAsync(wallet, walletDir, cancellationToken);
            var mint = await wallet.ResolveMintUrlAsync(marketUrl, cancellationToken);
            var offer = await wallet.QuoteMeltAsync(bolt11, mint, cancellationToken);
            var need = offer.Quote.Amount + offer.Quote.FeeReserve;
            var held = (await wallet.BalancesAsync(cancellationToken)).FirstOrDefault(b => b.Mint == offer.Mint)?.Available ?? 0;
            if (!json)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"Paying {offer.Quote.Amount} sat with a fee reserve of up to {offer.Quote.FeeReserve} sat from this provider's earnings"));
            }

            if (held < need)
            {
                await TakeEarningsAsync(http, key, wallet, walletDir, (long)(need - held), cancellationToken);
            }

            var melted = await wallet.MeltAsync(offer, cancellationToken);
            var left = (await wallet.BalancesAsync(cancellationToken)).FirstOrDefault(b => b.Mint == offer.Mint)?.Available ?? 0;
            if (json)
            {
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    state = melted.State,
                    amount_sat = melted.Amount,
                    fee_paid_sat = melted.FeePaid,
                    preimage = melted.Preimage,
                    wallet_balance_sat = left,
                }));
            }
            else if (melted.State == MeltQuoteState.Paid)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"Paid {melted.Amount} sat (routing fee {melted.FeePaid} sat). Preimage: {melted.Preimage}. {left} sat of change stays in {walletDir} for the next payout."));
            }
            else
            {
                Console.WriteLine($"The payment is {melted.State.ToLowerInvariant()}; the ecash stays locked at the mint until it settles (see 'coinop wallet --data {walletDir} balance')");
            }

            return melted.State is MeltQuoteState.Paid or MeltQuoteState.Pending ? 0 : 1;
        }
        catch (CashuException ex)
        {
            throw new CliException($"the mint refused: {ex.Detail} (code {ex.Code})");
        }
        catch (Exception ex) when (ex is InvalidOperationException or TimeoutException or FormatException)
        {
            throw new CliException(ex.Message);
        }
    }

    private static async Task TakeEarningsAsync(HttpClient http, NSec.Cryptography.Key key, CashuWallet wallet, string walletDir, long sats, CancellationToken cancellationToken)
    {
        var (status, body) = await ProviderMoneyCommands.SendSignedAsync(http, key, HttpMethod.Post, "/api/provider/payout", sats, cancellationToken);
        using var doc = JsonDocument.Parse(body.Length == 0 ? "{}" : body);
        if (status is not (HttpStatusCode.OK or HttpStatusCode.Conflict) || !doc.RootElement.TryGetProperty("token", out var token) || token.GetString() is not { } text)
        {
            throw new CliException($"{(int)status} {ApiErrorText.MessageOf(body)}");
        }

        // Written down before the swap that makes it ours: a run that dies here receives it next time.
        var file = Path.Combine(walletDir, $"payout-{Guid.NewGuid():N}.token");
        await File.WriteAllTextAsync(file, text, cancellationToken);
        await wallet.ReceiveAsync(text, cancellationToken);
        File.Delete(file);
    }

    private static async Task ReceiveLeftoversAsync(CashuWallet wallet, string walletDir, CancellationToken cancellationToken)
    {
        foreach (var file in Directory.EnumerateFiles(walletDir, "payout-*.token"))
        {
            try
            {
                await wallet.ReceiveAsync(await File.ReadAllTextAsync(file, cancellationToken), cancellationToken);
            }
            catch (CashuException ex) when (ex.Code == CashuErrorCode.ProofsAlreadySpent)
            {
                // Received before the file could be deleted.
            }

            File.Delete(file);
        }
    }
}
