using System.Globalization;
using System.Text.Json;
using Coinop.Core.Identity;
using Coinop.Market.Hosting;
using Coinop.Market.Inference;
using Coinop.Storage.Payments;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;
using NSec.Cryptography;

namespace Coinop.Market.Payments;

/// <summary>
/// A provider's money, by requests signed with its Ed25519 identity key (see <see cref="ProviderRequestAuth"/>):
/// <c>GET /api/provider/earnings</c> and <c>POST /api/provider/payout {"amount": sats}</c> (default: every whole sat
/// owed), which answers with a <c>cashuB</c> token of our mint. Each nonce is served once; a replay gets 409 (with
/// the original token when it repeats the same payout, so a client that lost the answer can retry safely).
/// </summary>
internal static class ProviderMoneyEndpoints
{
    public const string EarningsPath = "/api/provider/earnings";
    public const string PayoutPath = "/api/provider/payout";

    public static void Map(IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet(EarningsPath, EarningsAsync);
        endpoints.MapPost(PayoutPath, PayoutAsync);
    }

    private static async Task EarningsAsync(HttpContext http, Payouts payouts, MarketIdentity identity, IOptions<PaymentsOptions> options, TimeProvider time)
    {
        var (request, error) = Verify(http, null, identity, options.Value, time);
        if (request is null)
        {
            await ReplyAsync(http, error!);
            return;
        }

        if (!await payouts.RecordProviderRequestAsync(request, http.RequestAborted))
        {
            await Results.Json(ReplayBody(), statusCode: StatusCodes.Status409Conflict).ExecuteAsync(http);
            return;
        }

        var earnings = await payouts.EarningsAsync(request.ProviderId, http.RequestAborted);
        await Results.Json(new
        {
            provider_id = earnings.ProviderId,
            earned_msat = earnings.EarnedMsat,
            paid_out_msat = earnings.PaidOutMsat,
            owed_msat = earnings.OwedMsat,
            payable_sat = earnings.OwedMsat / 1000,
        }).ExecuteAsync(http);
    }

    private static async Task PayoutAsync(HttpContext http, Payouts payouts, MarketIdentity identity, IOptions<PaymentsOptions> options, TimeProvider time)
    {
        var (amount, bodyError) = await ReadAmountAsync(http.Request);
        if (bodyError is not null)
        {
            await ReplyAsync(http, bodyError);
            return;
        }

        var (request, error) = Verify(http, amount, identity, options.Value, time);
        if (request is null)
        {
            await ReplyAsync(http, error!);
            return;
        }

        var result = await payouts.PayoutAsync(request, CancellationToken.None);
        switch (result.Status)
        {
            case PayoutStatus.Paid:
                await Results.Json(new { provider_id = request.ProviderId, amount = result.AmountSat, token = result.Token, owed_msat = result.OwedMsat })
                    .ExecuteAsync(http);
                break;
            case PayoutStatus.Replayed:
                // Never the original token: whoever replays a captured request must learn nothing new from it.
                await Results.Json(ReplayBody(), statusCode: StatusCodes.Status409Conflict).ExecuteAsync(http);
                break;
            case PayoutStatus.Conflict:
                await ReplyAsync(http, new ApiError(409, "invalid_request_error", "payout_in_progress",
                    $"another payout for {request.ProviderId} is in progress; nothing was paid, ask again once it is done"));
                break;
            case PayoutStatus.NothingOwed:
                await ReplyAsync(http, new ApiError(400, "invalid_request_error", "nothing_owed",
                    $"less than 1 sat is owed to {request.ProviderId} ({result.OwedMsat} msat)"));
                break;
            default:
                await ReplyAsync(http, new ApiError(400, "invalid_request_error", "more_than_owed",
                    $"{result.AmountSat} sat asked, {result.OwedMsat / 1000} sat owed to {request.ProviderId}"));
                break;
        }
    }

    /// <summary>Checks the signature headers; returns the request to record under its nonce, or why it is refused.</summary>
    private static (ProviderRequestRecord? Request, ApiError? Error) Verify(HttpContext http, long? amountSat, MarketIdentity identity,
        PaymentsOptions options, TimeProvider time)
    {
        var headers = http.Request.Headers;
        var nonce = headers[ProviderRequestAuth.NonceHeader].ToString();
        if (!TryBase64(headers[ProviderRequestAuth.KeyHeader].ToString(), 32, out var publicKey)
            || !TryBase64(headers[ProviderRequestAuth.SignatureHeader].ToString(), 64, out var signature)
            || !long.TryParse(headers[ProviderRequestAuth.TimestampHeader].ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out var signedAt)
            || !ProviderRequestAuth.IsValidNonce(nonce))
        {
            return (null, PaymentErrors.Unauthorized(
                $"sign the request: {ProviderRequestAuth.KeyHeader}, {ProviderRequestAuth.TimestampHeader}, {ProviderRequestAuth.NonceHeader} and {ProviderRequestAuth.SignatureHeader} (use 'coinop provider earnings|payout')"));
        }

        var now = time.GetUtcNow();
        if (Math.Abs(now.ToUnixTimeMilliseconds() - signedAt) > (long)options.SignedRequestWindow.TotalMilliseconds)
        {
            return (null, PaymentErrors.Unauthorized($"the request's timestamp is more than {options.SignedRequestWindow.TotalSeconds:0.###} s from the market's clock"));
        }

        var payload = ProviderRequestAuth.SigningPayload(identity.MarketId, http.Request.Method, http.Request.Path.Value ?? "", amountSat, signedAt, nonce);
        if (!PublicKey.TryImport(SignatureAlgorithm.Ed25519, publicKey, KeyBlobFormat.RawPublicKey, out var key) || key is null
            || !SignatureAlgorithm.Ed25519.Verify(key, payload, signature))
        {
            return (null, PaymentErrors.Unauthorized("the signature does not verify for this market, method, path, amount, timestamp and nonce"));
        }

        return (new ProviderRequestRecord(nonce, ProviderAuth.ProviderIdFor(publicKey), http.Request.Method, http.Request.Path.Value ?? "", amountSat,
            DateTimeOffset.FromUnixTimeMilliseconds(signedAt), now, null), null);
    }

    private static object ReplayBody() => new
    {
        error = new { message = "this signed request was already served (its nonce is used); sign a new one", type = "invalid_request_error", code = "request_replayed" },
        token = (string?)null,
    };

    private static async Task<(long? Amount, ApiError? Error)> ReadAmountAsync(HttpRequest request)
    {
        var error = ApiError.InvalidBody("the body must be empty or a JSON object {\"amount\": SATS} with a positive whole number");
        try
        {
            using var reader = new StreamReader(request.Body);
            var text = await reader.ReadToEndAsync(request.HttpContext.RequestAborted);
            if (string.IsNullOrWhiteSpace(text))
            {
                return (null, null);
            }

            using var body = JsonDocument.Parse(text);
            if (body.RootElement.ValueKind != JsonValueKind.Object)
            {
                return (null, error);
            }

            if (!body.RootElement.TryGetProperty("amount", out var amount) || amount.ValueKind == JsonValueKind.Null)
            {
                return (null, null);
            }

            // TryGetInt64 throws on anything but a number: an array or a string is a bad body, not a 500.
            return amount.ValueKind == JsonValueKind.Number && amount.TryGetInt64(out var sats) && sats > 0 && sats <= long.MaxValue / 1000 ? (sats, null) : (null, error);
        }
        catch (JsonException)
        {
            return (null, error);
        }
    }

    private static bool TryBase64(string text, int length, out byte[] bytes)
    {
        bytes = new byte[length];
        return Convert.TryFromBase64String(text, bytes, out var written) && written == length;
    }

    private static Task ReplyAsync(HttpContext http, ApiError error) => error.WriteResponseAsync(http.Response, ErrorShape.OpenAi, http.RequestAborted);
}
