using System.Globalization;
using Coinop.Market.Inference;

namespace Coinop.Market.Payments;

/// <summary>The errors of the payment layer, in the OpenAI error shape the consumer APIs use.</summary>
public static class PaymentErrors
{
    /// <summary>A token that cannot pay: malformed, forged, spent, of a mint or unit not accepted. The code is the Cashu error code.</summary>
    public static ApiError InvalidPayment(int cashuCode, string message) =>
        new(400, "invalid_payment", cashuCode.ToString(CultureInfo.InvariantCulture), message);

    public static ApiError PaymentRequired(string message) => new(402, "payment_required", "payment_required", message);

    public static ApiError InvalidApiKey() => new(401, "invalid_request_error", "invalid_api_key", "the API key is not known to this market");

    public static ApiError MissingApiKey() =>
        new(401, "invalid_request_error", "missing_api_key", "send 'Authorization: Bearer <sk-… balance key or cashu token>'");

    public static ApiError MintUnavailable(string mint) =>
        new(503, "service_unavailable", "mint_unavailable", $"the mint {mint} did not answer; if it took the token, the market credits it to the balance of this token (use the token as the Bearer key)");

    public static ApiError Unauthorized(string message) => new(401, "authentication_error", "unauthorized", message);
}
