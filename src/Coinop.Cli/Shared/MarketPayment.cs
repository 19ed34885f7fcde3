using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Coinop.Ecash.MintApi;
using Coinop.Ecash.PaymentRequests;
using Coinop.Wallet;

namespace Coinop.Cli.Shared;

/// <summary>
/// How the CLI pays a market from the local wallet (<c>coinop chat</c>, <c>coinop workload</c>): a 402's NUT-18 payment
/// request says how much and from which mints; the wallet sends a token of that amount from a mint it holds, the
/// request is retried with it in <c>X-Cashu</c>, and the change (response header, or a stream's <c>: X-Cashu</c>
/// comment) goes back into the wallet. When a paid request fails without change, the ecash is reclaimed: swapped back
/// if the market never took it, or refunded from the balance the market keeps under the token.
/// </summary>
public sealed class MarketPayment
{
    public const string Header = "X-Cashu";

    private readonly CashuWallet _wallet;
    private readonly HttpClient _market;

    private MarketPayment(CashuWallet wallet, HttpClient market, string token, ulong amount)
    {
        _wallet = wallet;
        _market = market;
        Token = token;
        Amount = amount;
    }

    /// <summary>The token sent with the request.</summary>
    public string Token { get; }

    public ulong Amount { get; }

    /// <summary>
    /// Reads the payment request of a 402 and makes a token for it; null when the 402 carries none. A request for more
    /// than <paramref name="maxSat"/> is refused before the wallet is touched.
    /// </summary>
    public static async Task<MarketPayment?> PayAsync(HttpResponseMessage refused, HttpClient market, string walletDir, HttpClient http, string memo,
        ulong maxSat, CancellationToken cancellationToken)
    {
        if (!refused.Headers.TryGetValues(Header, out var values) || values.FirstOrDefault() is not { } text || !text.StartsWith(PaymentRequest.Prefix, StringComparison.Ordinal))
        {
            return null;
        }

        var request = PaymentRequest.Decode(text);
        var amount = request.Amount ?? throw new CliException("the market's payment request names no amount");
        if (request.Unit is { } unit && unit != "sat")
        {
            throw new CliException($"the market asks for {amount} {unit}; this wallet holds sat");
        }

        return await PayAmountAsync(request.Mints ?? [], amount, market, walletDir, http, memo, maxSat, cancellationToken);
    }

    /// <summary>
    /// Makes a token of <paramref name="amount"/> sat from the first of <paramref name="mints"/> the wallet holds enough of;
    /// more than <paramref name="maxSat"/> is refused.
    /// </summary>
    public static async Task<MarketPayment> PayAmountAsync(IEnumerable<string> mints, ulong amount, HttpClient market, string walletDir, HttpClient http, string memo,
        ulong maxSat, CancellationToken cancellationToken)
    {
        if (amount > maxSat)
        {
            throw new CliException($"the market asks {amount} sat, more than --max-sat {maxSat}: nothing was paid; pass --max-sat {amount} to allow it");
        }

        var wallet = await OpenWalletAsync(walletDir, http, $"the market asks {amount} sat for this request", market, cancellationToken);
        var accepted = mints.Select(Ecash.Tokens.Token.NormalizeMintUrl).ToList();
        var balances = await wallet.BalancesAsync(cancellationToken);
        var mint = accepted.FirstOrDefault(m => balances.Any(b => string.Equals(b.Mint, m, StringComparison.OrdinalIgnoreCase) && b.Available >= amount))
            ?? throw new CliException(
                $"the market asks {amount} sat from one of {string.Join(", ", accepted)}; the wallet at {walletDir} holds {Describe(balances)}: mint some with 'coinop wallet --data {walletDir} mint SATS --mint {accepted.FirstOrDefault()}'");
        try
        {
            return new MarketPayment(wallet, market, await wallet.SendAsync(amount, mint, cancellationToken, memo), amount);
        }
        catch (CashuException ex)
        {
            throw new CliException($"the wallet could not make a token: {ex.Detail} (code {ex.Code})");
        }
    }

    /// <summary>Takes ecash the market gave back (a refund) into the wallet; returns its sats.</summary>
    public static async Task<ulong> ReceiveAsync(string token, string walletDir, HttpClient http, HttpClient market, CancellationToken cancellationToken)
    {
        var wallet = await OpenWalletAsync(walletDir, http, "the market gave ecash back", market, cancellationToken, create: true);
        try
        {
            return await wallet.ReceiveAsync(token, cancellationToken);
        }
        catch (CashuException ex)
        {
            throw new CliException($"the wallet could not take the token: {ex.Detail} (code {ex.Code}); it is: {token}");
        }
    }

    /// <summary>The change token in a response's <c>X-Cashu</c> header, if any.</summary>
    public static string? ChangeIn(HttpResponseMessage response) =>
        response.Headers.TryGetValues(Header, out var values) && values.FirstOrDefault() is { } v && v.StartsWith("cashu", StringComparison.Ordinal) ? v : null;

    /// <summary>
    /// Takes the change into the wallet; when the request did not complete and no change came, reclaims what the
    /// market kept. Returns the sats that came back.
    /// </summary>
    public async Task<ulong> FinishAsync(string? change, bool completed, CancellationToken cancellationToken)
    {
        if (change is not null || completed)
        {
            var back = change is null ? 0 : await _wallet.ReceiveAsync(change, cancellationToken); // no change: a whole-sat charge
            await _wallet.RefreshReservedAsync(cancellationToken); // the market redeemed the token: its proofs are spent now
            return back;
        }

        try
        {
            return await _wallet.ReceiveAsync(Token, cancellationToken); // the market never took it
        }
        catch (CashuException ex) when (ex.Code is CashuErrorCode.ProofsAlreadySpent or CashuErrorCode.ProofsPending)
        {
            // It did: what is left sits in the balance the market keeps under this token.
        }

        using var refund = new HttpRequestMessage(HttpMethod.Post, "v1/balance/refund");
        refund.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Token);
        using var response = await _market.SendAsync(refund, cancellationToken);
        if (response.StatusCode != HttpStatusCode.OK)
        {
            return 0;
        }

        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync(cancellationToken));
        return body.RootElement.TryGetProperty("token", out var token) && token.GetString() is { } refunded
            ? await _wallet.ReceiveAsync(refunded, cancellationToken)
            : 0;
    }

    private static async Task<CashuWallet> OpenWalletAsync(string walletDir, HttpClient http, string why, HttpClient market, CancellationToken cancellationToken,
        bool create = false)
    {
        if (!create && !File.Exists(Path.Combine(walletDir, "wallet.db")))
        {
            throw new CliException(
                $"{why} and there is no wallet at {walletDir}: fund one with 'coinop wallet --data {walletDir} mint SATS --mint {market.BaseAddress}'");
        }

        return await CashuWallet.OpenAsync(walletDir, http, TimeProvider.System, cancellationToken);
    }

    private static string Describe(IReadOnlyList<MintBalance> balances) =>
        balances.Count == 0 ? "nothing" : string.Join(", ", balances.Select(b => $"{b.Available} sat at {b.Mint}"));
}
