using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace Coinop.Market.Inference;

/// <summary>
/// Who a request comes from, for fairness in the capacity queue: the credential of <c>Authorization: Bearer</c> (a
/// balance key, or a Cashu token used as the key: the same credential is the same consumer), else the remote address
/// (a consumer paying each request with a fresh <c>X-Cashu</c> token has no other lasting name). Only a hash of the
/// credential is kept, never the credential itself.
/// </summary>
public static class ConsumerIdentity
{
    public static string Of(HttpContext http)
    {
        var authorization = http.Request.Headers.Authorization.ToString();
        if (authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) && authorization.Length > 7)
        {
            Span<byte> hash = stackalloc byte[32];
            SHA256.HashData(Encoding.UTF8.GetBytes(authorization.AsSpan(7).Trim().ToString()), hash);
            return "key:" + Convert.ToHexStringLower(hash[..12]);
        }

        return "addr:" + (http.Connection.RemoteIpAddress?.ToString() ?? "unknown");
    }
}
