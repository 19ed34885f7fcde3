using System.Globalization;
using Coinop.Ecash.PaymentRequests;
using Coinop.Ecash.Tokens;
using Coinop.Market.Inference;
using Microsoft.AspNetCore.Http;

namespace Coinop.Market.Payments;

/// <summary>
/// Billing of a paid market. Before dispatch it reserves the job's worst case (the most expensive candidate
/// provider's price × the input estimate and <c>max_tokens</c>): from an <c>X-Cashu</c> token given with the request
/// (NUT-24; its whole value is held), or from a balance named by <c>Authorization: Bearer</c> (an <c>sk-</c> key, or a
/// Cashu token used as the key). No payment gets a 402 with a NUT-18 payment request. On completion the actual
/// cost is charged (at most the reservation) and a token payer's change comes back in the <c>X-Cashu</c> response
/// header, or for a stream as the SSE comment <c>: X-Cashu &lt;token&gt;</c> before its end (and as an HTTP trailer
/// when the client sent <c>TE: trailers</c> over HTTP/2). A job that fails before any output costs nothing.
/// </summary>
public sealed class PaidInferenceBilling(Cashier cashier, PaymentsMetrics metrics) : IInferenceBilling
{
    public const string HeaderName = "X-Cashu";

    public async ValueTask<BillingReservation> ReserveAsync(BillingRequest request, CancellationToken cancellationToken)
    {
        var reservationMsat = request.WorstCasePrice.CostMsat(request.InputTokens, request.OutputTokens);
        if (reservationMsat <= 0)
        {
            return BillingReservation.Free; // every candidate serves this model for nothing
        }

        var http = request.Http.HttpContext;
        if (request.Http.Headers.TryGetValue(HeaderName, out var header) && header.Count > 0)
        {
            return await PayWithTokenAsync(http, request.JobId, header.ToString(), reservationMsat, cancellationToken);
        }

        var bearer = Bearer(request.Http);
        if (bearer is null || !(bearer.StartsWith(PaymentKeys.ApiKeyPrefix, StringComparison.Ordinal) || IsToken(bearer)))
        {
            metrics.Refused("no_payment");
            return PaymentRequired(reservationMsat,
                $"this request costs up to {Settlement.CeilSat(reservationMsat)} sat: pay with a Cashu token in the X-Cashu header (the payment request is in this response's X-Cashu header) or with a balance key");
        }

        var balance = await ResolveBalanceAsync(bearer, cancellationToken);
        if (balance.Error is { } error)
        {
            metrics.Refused(error.Code);
            return BillingReservation.Refuse(error);
        }

        if (!await cashier.ReserveAsync(balance.Account!, request.JobId, reservationMsat, CancellationToken.None))
        {
            metrics.Refused("balance_too_low");
            return PaymentRequired(reservationMsat,
                $"the balance is too low: this request reserves up to {reservationMsat} msat; top it up, or pay this request with an X-Cashu token");
        }

        metrics.Accepted("balance");
        return new BillingReservation(true, new PaidHold(request.JobId, http, Token: false, reservationMsat, TrailerDeclared: false));
    }

    public async ValueTask<BillingSettlement> SettleAsync(BillingReservation reservation, BillingUsage usage, CancellationToken cancellationToken)
    {
        if (reservation.State is not PaidHold hold)
        {
            return BillingSettlement.Free;
        }

        var cost = usage.Price.CostMsat(usage.Usage);
        var settled = await cashier.SettleAsync(hold.JobId, cost, hold.ReservationMsat, usage.ProviderId, cancellationToken);
        if (settled is null)
        {
            return BillingSettlement.Free;
        }

        if (settled.ChangeToken is not { } change)
        {
            return new BillingSettlement([], null, settled.ChargeMsat);
        }

        if (hold.TrailerDeclared && hold.Http.Response.HasStarted)
        {
            // A stream: the change also goes in the HTTP trailer the client asked for.
            hold.Http.Response.AppendTrailer(HeaderName, change);
        }

        return new BillingSettlement([new(HeaderName, change)], HeaderName + " " + change, settled.ChargeMsat);
    }

    public async ValueTask ReleaseAsync(BillingReservation reservation, bool outputSent, CancellationToken cancellationToken)
    {
        if (reservation.State is not PaidHold hold)
        {
            return;
        }

        // Change can ride on the error response only while it has not started and the consumer is still there;
        // otherwise the value goes to the token's balance (spend or refund it with the same token as the Bearer key).
        var http = hold.Http;
        var giveChange = hold.Token && !outputSent && !http.Response.HasStarted && !http.RequestAborted.IsCancellationRequested;
        var change = await cashier.ReleaseAsync(hold.JobId, giveChange, cancellationToken);
        if (change is not null && !http.Response.HasStarted)
        {
            http.Response.Headers[HeaderName] = change;
        }
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
        if (TokenCodec.TryDecode(bearer, out var decoded, out _) && decoded is { Proofs.Count: > 0 }
            && PaymentKeys.TokenAccount(PaymentKeys.TokenKey(decoded)) is var existing
            && await cashier.BalanceAsync(existing, cancellationToken) is not null)
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

    /// <summary>The value of <c>Authorization: Bearer …</c>, or null.</summary>
    public static string? Bearer(HttpRequest request)
    {
        var value = request.Headers.Authorization.ToString();
        return value.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) && value.Length > 7 ? value[7..].Trim() : null;
    }

    private static bool IsToken(string value) => value.StartsWith("cashu", StringComparison.Ordinal);

    private async Task<BillingReservation> PayWithTokenAsync(HttpContext http, Guid jobId, string text, long reservationMsat, CancellationToken cancellationToken)
    {
        var check = cashier.CheckToken(text);
        if (check.Token is not { } token)
        {
            metrics.Refused("invalid_token");
            return BillingReservation.Refuse(PaymentErrors.InvalidPayment(check.ErrorCode, check.Error!));
        }

        var needSat = Settlement.CeilSat(reservationMsat);
        if (token.AmountSat < needSat)
        {
            metrics.Refused("token_too_small");
            return PaymentRequired(reservationMsat, $"the token holds {token.AmountSat} sat; this request needs up to {needSat} sat");
        }

        var accepted = await cashier.AcceptAsync(token, new CreditHold(jobId, reservationMsat), cancellationToken);
        switch (accepted.Outcome)
        {
            case AcceptOutcome.Held:
                metrics.Accepted("token");
                var trailer = AcceptsTrailers(http);
                if (trailer)
                {
                    http.Response.DeclareTrailer(HeaderName);
                }

                return new BillingReservation(true, new PaidHold(jobId, http, Token: true, reservationMsat, trailer));
            case AcceptOutcome.CreditedToTokenBalance:
                metrics.Refused("token_too_small");
                return PaymentRequired(reservationMsat,
                    $"after its mint's input fee the token is worth {accepted.CreditedMsat} msat, less than the {reservationMsat} msat this request reserves; " +
                    "its value is kept as a balance: use the same token as the Bearer key to top it up, spend it, or refund it");
            case AcceptOutcome.MintUnavailable:
                metrics.Refused("mint_unavailable");
                return BillingReservation.Refuse(PaymentErrors.MintUnavailable(token.Mint));
            default:
                metrics.Refused("invalid_token");
                return BillingReservation.Refuse(PaymentErrors.InvalidPayment(accepted.ErrorCode, accepted.Error!));
        }
    }

    /// <summary>A 402 with a NUT-18 payment request for the reservation in whole sats, from any accepted mint.</summary>
    private BillingReservation PaymentRequired(long reservationMsat, string message)
    {
        var request = new PaymentRequest
        {
            Amount = (ulong)Settlement.CeilSat(reservationMsat),
            Unit = "sat",
            Mints = cashier.AcceptedMints,
            Description = string.Create(CultureInfo.InvariantCulture, $"Coinop request, up to {reservationMsat} msat; change comes back"),
        };
        return BillingReservation.Refuse(PaymentErrors.PaymentRequired(message), [new(HeaderName, request.Encode())]);
    }

    private static bool AcceptsTrailers(HttpContext http) =>
        http.Request.Headers.TE.Any(v => v is not null && v.Contains("trailers", StringComparison.OrdinalIgnoreCase)) && http.Response.SupportsTrailers();

    private sealed record PaidHold(Guid JobId, HttpContext Http, bool Token, long ReservationMsat, bool TrailerDeclared);
}

/// <summary>The balance account a credential names, or why it names none.</summary>
public sealed record BalanceLookup(string? Account, ApiError? Error);
