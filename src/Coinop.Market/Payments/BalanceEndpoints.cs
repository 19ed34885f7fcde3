using System.Text.Json;
using Coinop.Market.Inference;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Coinop.Market.Payments;

/// <summary>
/// Balance keys (the Routstr-style API): <c>POST /v1/balance/create {"token"}</c> opens a balance and returns its
/// <c>sk-</c> key; <c>GET /v1/balance/info</c>, <c>POST /v1/balance/topup {"token"}</c> and <c>POST /v1/balance/refund</c>
/// act on the balance named by <c>Authorization: Bearer</c> (a key, or a Cashu token used as the key). A token used as
/// the key first collects into its balance the change of whatever it paid for that may not have reached the consumer
/// (see <see cref="HoldChange.CollectChangeAsync"/>).
/// </summary>
internal static class BalanceEndpoints
{
    public static void Map(IEndpointRouteBuilder endpoints)
    {
        var balance = endpoints.MapGroup("/v1/balance");
        balance.MapPost("/create", CreateAsync);
        balance.MapGet("/info", InfoAsync);
        balance.MapPost("/topup", TopUpAsync);
        balance.MapPost("/refund", RefundAsync);
    }

    private static async Task CreateAsync(HttpContext http, Cashier cashier)
    {
        var (text, error) = await ReadTokenAsync(http.Request);
        if (text is null)
        {
            await ReplyAsync(http, error!);
            return;
        }

        var check = cashier.CheckToken(text);
        if (check.Token is not { } token)
        {
            await ReplyAsync(http, PaymentErrors.InvalidPayment(check.ErrorCode, check.Error!));
            return;
        }

        var key = PaymentKeys.NewApiKey();
        var account = PaymentKeys.ApiKeyAccount(key);
        var accepted = await cashier.AcceptAsync(token, new CreditBalance(account), http.RequestAborted);
        if (accepted.Outcome != AcceptOutcome.Credited)
        {
            await ReplyAsync(http, Refusal(accepted, token));
            return;
        }

        await Results.Json(new { api_key = key, balance_msat = accepted.CreditedMsat }).ExecuteAsync(http);
    }

    private static async Task InfoAsync(HttpContext http, Cashier cashier, HoldChange holdChange, PaymentIntake intake)
    {
        if (await AccountAsync(http, holdChange, intake) is not { } account)
        {
            return;
        }

        await Results.Json(new { balance_msat = await cashier.BalanceAsync(account, http.RequestAborted) ?? 0 }).ExecuteAsync(http);
    }

    private static async Task TopUpAsync(HttpContext http, Cashier cashier, HoldChange holdChange, PaymentIntake intake)
    {
        var (text, error) = await ReadTokenAsync(http.Request);
        if (text is null)
        {
            await ReplyAsync(http, error!);
            return;
        }

        if (await AccountAsync(http, holdChange, intake) is not { } account)
        {
            return;
        }

        var check = cashier.CheckToken(text);
        if (check.Token is not { } token)
        {
            await ReplyAsync(http, PaymentErrors.InvalidPayment(check.ErrorCode, check.Error!));
            return;
        }

        var accepted = await cashier.AcceptAsync(token, new CreditBalance(account), http.RequestAborted);
        if (accepted.Outcome != AcceptOutcome.Credited)
        {
            await ReplyAsync(http, Refusal(accepted, token));
            return;
        }

        await Results.Json(new { added_msat = accepted.CreditedMsat, balance_msat = await cashier.BalanceAsync(account, http.RequestAborted) ?? 0 })
            .ExecuteAsync(http);
    }

    private static async Task RefundAsync(HttpContext http, Payouts payouts, HoldChange holdChange, PaymentIntake intake)
    {
        if (await AccountAsync(http, holdChange, intake) is not { } account)
        {
            return;
        }

        var refund = await payouts.RefundAsync(account, CancellationToken.None);
        if (refund is null)
        {
            await ReplyAsync(http, PaymentErrors.InvalidApiKey());
            return;
        }

        if (refund.ChangeUnavailable is { } other)
        {
            await ReplyAsync(http, new ApiError(503, "service_unavailable", "change_unavailable",
                $"the balance holds ecash of {other}, and the market cannot make {refund.RemainingMsat / 1000} sat of it from the notes it holds now; " +
                "nothing moved: ask again later"));
            return;
        }

        if (refund.Token is null)
        {
            await ReplyAsync(http, new ApiError(400, "invalid_request_error", "balance_empty",
                $"the balance holds {refund.RemainingMsat} msat, less than 1 sat: nothing to refund"));
            return;
        }

        await Results.Json(new { token = refund.Token, amount = refund.AmountSat, balance_msat = refund.RemainingMsat }).ExecuteAsync(http);
    }

    /// <summary>The balance the request's Bearer credential names (a token key opens its balance on first use), or an error reply.</summary>
    private static async Task<string?> AccountAsync(HttpContext http, HoldChange holdChange, PaymentIntake intake)
    {
        if (PaymentIntake.Bearer(http.Request) is not { } bearer)
        {
            await ReplyAsync(http, PaymentErrors.MissingApiKey());
            return null;
        }

        if (!bearer.StartsWith(PaymentKeys.ApiKeyPrefix, StringComparison.Ordinal) && PaymentIntake.PayerAccountOf(bearer) is { } tokenAccount)
        {
            await holdChange.CollectChangeAsync(tokenAccount, CancellationToken.None);
        }

        var lookup = await intake.ResolveBalanceAsync(bearer, http.RequestAborted);
        if (lookup.Error is { } error)
        {
            await ReplyAsync(http, error);
            return null;
        }

        return lookup.Account;
    }

    private static ApiError Refusal(TokenAcceptance accepted, CheckedToken token) => accepted.Outcome switch
    {
        AcceptOutcome.MintUnavailable => PaymentErrors.MintUnavailable(token.Mint),
        AcceptOutcome.CreditedToTokenBalance => new ApiError(409, "invalid_request_error", "balance_mint_changed",
            "the balance took another mint's ecash meanwhile; this token's value is in its own balance (use the token as the Bearer key)"),
        _ => PaymentErrors.InvalidPayment(accepted.ErrorCode, accepted.Error ?? "the token cannot be redeemed"),
    };

    private static async Task<(string? Token, ApiError? Error)> ReadTokenAsync(HttpRequest request)
    {
        try
        {
            using var body = await JsonDocument.ParseAsync(request.Body, cancellationToken: request.HttpContext.RequestAborted);
            if (body.RootElement.ValueKind == JsonValueKind.Object && body.RootElement.TryGetProperty("token", out var token)
                && token.ValueKind == JsonValueKind.String && token.GetString() is { Length: > 0 } text)
            {
                return (text, null);
            }
        }
        catch (JsonException)
        {
        }
        catch (InvalidOperationException)
        {
            // GetString on an unpaired surrogate escape ("\ud800"): not a token either.
        }

        return (null, ApiError.InvalidBody("the body must be a JSON object with a \"token\" (a cashuA or cashuB token)"));
    }

    private static Task ReplyAsync(HttpContext http, ApiError error) => error.WriteResponseAsync(http.Response, ErrorShape.OpenAi, http.RequestAborted);
}
