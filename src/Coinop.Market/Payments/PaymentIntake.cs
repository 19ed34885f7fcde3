using Coinop.Ecash.PaymentRequests;
using Coinop.Ecash.Tokens;
using Coinop.Market.Inference;
using Microsoft.AspNetCore.Http;

namespace Coinop.Market.Payments;

/// <summary>
/// What a payment is asked for, in the consumer's words: <paramref name="Subject"/> ("this request") costs
/// (<paramref name="UpTo"/>: at most) the amount; <paramref name="Description"/> goes in the NUT-18 payment request.
/// </summary>
public sealed record PaymentAsk(string Subject, bool UpTo, string Description);

/// <summary>
/// A payment held for a request or a workload (<see cref="HeldMsat"/> in the holds account under the hold's id), or
/// why not: the refusal and its headers (a 402's payment request). <see cref="PayerAccount"/> is the balance of
/// whoever paid: the paying token's own, or the Bearer key's.
/// </summary>
public sealed record IntakeResult(bool Held, bool Token, long HeldMsat, string? PayerAccount, ApiError? Refusal = null,
    IReadOnlyList<KeyValuePair<string, string>>? Headers = null)
{
    public static IntakeResult Refuse(ApiError error, IReadOnlyList<KeyValuePair<string, string>>? headers = null) => new(false, false, 0, null, error, headers);
}

/// <summary>
/// Takes a consumer's payment into a hold, the same way for every paid thing: an <c>X-Cashu</c> token (NUT-24; worth at
/// least the minimum, its whole value is held), or the balance named by <c>Authorization: Bearer</c> (an <c>sk-</c> key,
/// or a Cashu token used as the key; exactly the amount asked). No payment gets a 402 with a NUT-18 payment request;
/// a bad token a 400 with its Cashu error code.
/// </summary>
public sealed class PaymentIntake(Cashier cashier, RequestHolds holds, PayerMints payerMints, PaymentsMetrics metrics)
{
    public const string HeaderName = "X-Cashu";

    /// <param name="minimumMsat">What a token must be worth (the payment request asks for it in whole sats).</param>
    /// <param name="balanceMsat">What a balance is charged; null when this payment can only be made with a token.</param>
    /// <param name="balanceInProcess">A balance's reservation may be kept in process (see <see cref="RequestHolds.ReserveAsync"/>).</param>
    public async Task<IntakeResult> HoldAsync(HttpRequest http, Guid holdId, long minimumMsat, long? balanceMsat, PaymentAsk ask, CancellationToken cancellationToken,
        bool balanceInProcess = false)
    {
        var upTo = ask.UpTo ? "up to " : "";
        if (http.Headers.TryGetValue(HeaderName, out var header) && header.Count > 0)
        {
            return await HoldTokenAsync(CheckToken(http, header.ToString()), holdId, minimumMsat, ask, cancellationToken);
        }

        var bearer = Bearer(http);
        if (balanceMsat is not { } charge || bearer is null || !(bearer.StartsWith(PaymentKeys.ApiKeyPrefix, StringComparison.Ordinal) || IsToken(bearer)))
        {
            metrics.Refused("no_payment");
            return PaymentRequired(minimumMsat, ask,
                $"{ask.Subject} costs {upTo}{Settlement.CeilSat(minimumMsat)} sat: pay with a Cashu token in the X-Cashu header (the payment request is in this response's X-Cashu header){(balanceMsat is null ? "" : " or with a balance key")}");
        }

        // An sk- key goes straight to the reservation, which finds no account for an unknown key: only a refused
        // reservation pays for the read that tells an unknown key from a low balance.
        var balance = bearer.StartsWith(PaymentKeys.ApiKeyPrefix, StringComparison.Ordinal)
            ? new BalanceLookup(PaymentKeys.ApiKeyAccount(bearer), null)
            : await ResolveBalanceAsync(bearer, cancellationToken);
        if (balance.Error is { } error)
        {
            metrics.Refused(error.Code);
            return IntakeResult.Refuse(error);
        }

        if (!await holds.ReserveAsync(balance.Account!, holdId, charge, CancellationToken.None, balanceInProcess))
        {
            if (await cashier.BalanceAsync(balance.Account!, cancellationToken) is null)
            {
                var unknown = PaymentErrors.InvalidApiKey();
                metrics.Refused(unknown.Code);
                return IntakeResult.Refuse(unknown);
            }

            metrics.Refused("balance_too_low");
            return PaymentRequired(minimumMsat, ask,
                $"the balance is too low: {ask.Subject} takes {upTo}{charge} msat; top it up, or pay with an X-Cashu token");
        }

        metrics.Accepted("balance");
        return new IntakeResult(true, false, charge, balance.Account);
    }

    /// <summary>
    /// The balance a Bearer credential names: an <c>sk-</c> key's, or a token's (taking the token into a new balance
    /// the first time). A token whose balance exists is not redeemed again.
    /// </summary>
    public async Task<BalanceLookup> ResolveBalanceAsync(string bearer, CancellationToken cancellationToken)
    {
        if (bearer.StartsWith(PaymentKeys.ApiKeyPrefix, StringComparison.Ordinal))
        {
            var account = PaymentKeys.ApiKeyAccount(bearer);
            return await cashier.BalanceAsync(account, cancellationToken) is null
                ? new BalanceLookup(null, PaymentErrors.InvalidApiKey())
                : new BalanceLookup(account, null);
        }

        // An existing balance is found by the token's proofs alone (even if its mint is no longer accepted, or the
        // market moved to another URL); only taking a token in checks it.
        if (PayerAccountOf(bearer) is { } existing && await cashier.BalanceAsync(existing, cancellationToken) is not null)
        {
            return new BalanceLookup(existing, null);
        }

        var check = cashier.CheckToken(bearer);
        if (check.Token is not { } token)
        {
            return new BalanceLookup(null, PaymentErrors.InvalidPayment(check.ErrorCode, check.Error!));
        }

        var tokenAccount = PaymentKeys.TokenAccount(token.Key);
        var accepted = await cashier.AcceptAsync(token, new CreditBalance(tokenAccount), cancellationToken);
        return accepted.Outcome switch
        {
            AcceptOutcome.Credited or AcceptOutcome.CreditedToTokenBalance => new BalanceLookup(tokenAccount, null),
            AcceptOutcome.MintUnavailable => new BalanceLookup(null, PaymentErrors.MintUnavailable(token.Mint)),
            // Spent meanwhile by a concurrent request with the same token as its key: that request opened the balance.
            _ when await cashier.BalanceAsync(tokenAccount, cancellationToken) is not null => new BalanceLookup(tokenAccount, null),
            _ => new BalanceLookup(null, PaymentErrors.InvalidPayment(accepted.ErrorCode, accepted.Error!)),
        };
    }

    /// <summary>
    /// The balance account a credential stands for, without touching the store: an <c>sk-</c> key's, or a token's (by its
    /// proofs, however it is encoded). Null when it is neither.
    /// </summary>
    public static string? PayerAccountOf(string credential) =>
        credential.StartsWith(PaymentKeys.ApiKeyPrefix, StringComparison.Ordinal) ? PaymentKeys.ApiKeyAccount(credential)
        : TokenCodec.TryDecode(credential, out var decoded, out _) && decoded is { Proofs.Count: > 0 } ? PaymentKeys.TokenAccount(PaymentKeys.TokenKey(decoded))
        : null;

    /// <summary>The value of <c>Authorization: Bearer …</c>, or null.</summary>
    public static string? Bearer(HttpRequest request)
    {
        var value = request.Headers.Authorization.ToString();
        return value.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) && value.Length > 7 ? value[7..].Trim() : null;
    }

    /// <summary>
    /// <see cref="Cashier.CheckToken"/> of a request's <c>X-Cashu</c> token, made once per request: routing asks for the
    /// token's value (its budget) before the hold takes it, and both would otherwise decode it and hash its proofs.
    /// </summary>
    public TokenCheck CheckToken(HttpRequest http, string text)
    {
        var features = http.HttpContext.Features;
        if (features.Get<XCashuCheck>() is { } earlier && string.Equals(earlier.Text, text, StringComparison.Ordinal))
        {
            return earlier.Check;
        }

        var check = cashier.CheckToken(text);
        features.Set(new XCashuCheck(text, check));
        return check;
    }

    private static bool IsToken(string value) => value.StartsWith("cashu", StringComparison.Ordinal);

    private async Task<IntakeResult> HoldTokenAsync(TokenCheck check, Guid holdId, long minimumMsat, PaymentAsk ask, CancellationToken cancellationToken)
    {
        if (check.Token is not { } token)
        {
            metrics.Refused("invalid_token");
            return IntakeResult.Refuse(PaymentErrors.InvalidPayment(check.ErrorCode, check.Error!));
        }

        var needSat = Settlement.CeilSat(minimumMsat);
        if (token.AmountSat < needSat)
        {
            metrics.Refused("token_too_small");
            return PaymentRequired(minimumMsat, ask, $"the token holds {token.AmountSat} sat; {ask.Subject} needs {(ask.UpTo ? "up to " : "")}{needSat} sat");
        }

        var accepted = await cashier.AcceptAsync(token, new CreditHold(holdId, minimumMsat), cancellationToken);
        switch (accepted.Outcome)
        {
            case AcceptOutcome.Held:
                metrics.Accepted("token");
                return new IntakeResult(true, true, accepted.CreditedMsat, PaymentKeys.TokenAccount(token.Key));
            case AcceptOutcome.CreditedToTokenBalance:
                metrics.Refused("token_too_small");
                return PaymentRequired(minimumMsat, ask,
                    $"after its mint's input fee the token is worth {accepted.CreditedMsat} msat, less than the {minimumMsat} msat {ask.Subject} needs; " +
                    "its value is kept as a balance: use the same token as the Bearer key to top it up, spend it, or refund it");
            case AcceptOutcome.MintUnavailable:
                metrics.Refused("mint_unavailable");
                return IntakeResult.Refuse(PaymentErrors.MintUnavailable(token.Mint));
            default:
                metrics.Refused("invalid_token");
                return IntakeResult.Refuse(PaymentErrors.InvalidPayment(accepted.ErrorCode, accepted.Error!));
        }
    }

    /// <summary>A 402 with a NUT-18 payment request for the amount in whole sats, from any accepted mint.</summary>
    private IntakeResult PaymentRequired(long amountMsat, PaymentAsk ask, string message)
    {
        var request = new PaymentRequest
        {
            Amount = (ulong)Settlement.CeilSat(amountMsat),
            Unit = "sat",
            Mints = payerMints.AcceptedMints,
            Description = ask.Description,
        };
        return IntakeResult.Refuse(PaymentErrors.PaymentRequired(message), [new(HeaderName, request.Encode())]);
    }
}

/// <summary>A request's X-Cashu token (its text) and its check, kept on the request.</summary>
internal sealed record XCashuCheck(string Text, TokenCheck Check);

/// <summary>The balance account a credential names, or why it names none.</summary>
public sealed record BalanceLookup(string? Account, ApiError? Error);
