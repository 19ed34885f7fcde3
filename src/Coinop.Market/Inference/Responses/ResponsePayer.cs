using System.Security.Cryptography;
using System.Text;
using Coinop.Market.Payments;
using Microsoft.AspNetCore.Http;

namespace Coinop.Market.Inference.Responses;

/// <summary>
/// Who paid for a stored response, and so who may read it (<c>GET /v1/responses/{id}</c>) or continue it
/// (<c>previous_response_id</c>). The payer is the balance account the request's credential stands for: a balance key
/// (<c>Authorization: Bearer sk-…</c>) is its balance; a Cashu token, in <c>X-Cashu</c> or as the Bearer key, is that
/// token's own account, found from its proofs however it is encoded. A token is spent by paying, so presenting it
/// again proves nothing but that one held it: only its holder can read what it paid for. Any other Bearer value (a free
/// market takes any) stands for itself, by its hash. No credential at all: no payer, and the unguessable id alone reads it.
/// </summary>
public static class ResponsePayer
{
    public static string? Of(HttpRequest http)
    {
        if (http.Headers.TryGetValue(PaymentIntake.HeaderName, out var token) && token.Count > 0 && token.ToString() is { Length: > 0 } cashu)
        {
            return PaymentIntake.PayerAccountOf(cashu.Trim()) ?? Hashed(cashu.Trim());
        }

        return PaymentIntake.Bearer(http) is { } bearer ? PaymentIntake.PayerAccountOf(bearer) ?? Hashed(bearer) : null;
    }

    /// <summary>A response stored for <paramref name="owner"/> may be read by <paramref name="reader"/>.</summary>
    public static bool MayRead(string? owner, string? reader) => owner is null || string.Equals(owner, reader, StringComparison.Ordinal);

    private static string Hashed(string credential) =>
        "credential:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(credential)));
}
