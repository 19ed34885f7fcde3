using System.Security.Cryptography;
using System.Text;
using Coinop.Market.Payments;
using Microsoft.AspNetCore.Http;

namespace Coinop.Market.Web;

/// <summary>
/// Who may use the operator's endpoints: a request with <c>Authorization: Bearer &lt;admin token&gt;</c> (the token in
/// <c>&lt;data&gt;/admin.token</c>), or a browser that signed in at <c>/admin</c> and holds the session cookie. The cookie
/// holds a hash of the token, never the token; it is HttpOnly and SameSite=Strict, and actions also require a JSON body,
/// so another site cannot act through a signed-in browser.
/// </summary>
public static class AdminAuth
{
    public const string CookieName = "coinop_admin";

    public static bool IsAdmin(HttpRequest request, string adminToken)
    {
        if (PaymentIntake.Bearer(request) is { } bearer)
        {
            return FixedEquals(bearer, adminToken);
        }

        return request.Cookies.TryGetValue(CookieName, out var cookie) && cookie is not null && FixedEquals(cookie, CookieValue(adminToken));
    }

    /// <summary>The session cookie's value for <paramref name="adminToken"/>: changes when the token file changes.</summary>
    public static string CookieValue(string adminToken) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes("coinop admin session\n" + adminToken)));

    public static bool FixedEquals(string a, string b) =>
        CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(a), Encoding.UTF8.GetBytes(b));

    public static CookieOptions CookieOptions(HttpRequest request) => new()
    {
        HttpOnly = true,
        SameSite = SameSiteMode.Strict,
        Secure = request.IsHttps,
        Path = "/",
        IsEssential = true,
    };
}
