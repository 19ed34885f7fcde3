using System.Globalization;
using System.Net;
using System.Threading.RateLimiting;
using Coinop.Ecash.MintApi;
using Coinop.Market.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Coinop.Market.Abuse;

/// <summary>
/// Per-client limits on what anyone can do without paying or authenticating and that costs the market a row or a
/// signature check: creating mint and melt quotes, and provider handshakes. Partitioned by remote IP; loopback is
/// exempt unless <see cref="MarketOptions.RateLimitLoopback"/> (local tools, tests and a same-host reverse proxy
/// all come from loopback). A refusal is a 429 with <c>Retry-After</c> and a JSON body in the route's error shape.
/// </summary>
public static class ClientRateLimits
{
    public const string QuotePartition = "quote";
    public const string HandshakePartition = "handshake";

    // ASP.NET Core's rate limiting middleware is not used: it starts a partitioned limiter of its own (for endpoint
    // policies, which the market has none of) whose replenishment timer it never stops, and it never disposes the
    // options' GlobalLimiter either (dotnet/aspnetcore#66434). Either timer kept a stopped market, with its whole
    // container and pipeline, reachable for the life of the process: harmless with one market per process, but a test
    // process that starts hundreds grew to gigabytes and paused for seconds in full collections. The limiter here is
    // owned by the container and disposed with it.
    public static IServiceCollection AddClientRateLimits(this IServiceCollection services, MarketOptions options) =>
        services.AddSingleton(_ => new ClientLimiter(PartitionedRateLimiter.Create<HttpContext, string>(http => Partition(http, options))));

    /// <summary>
    /// Only requests that count against a limit go through the limiter: for any other (every inference request) its
    /// partition lookup and lease were ~3 % of the market's CPU at saturation, to find there was nothing to limit.
    /// </summary>
    public static IApplicationBuilder UseClientRateLimits(this IApplicationBuilder app)
    {
        var limiter = app.ApplicationServices.GetRequiredService<ClientLimiter>().Limiter;
        return app.Use((http, next) =>
            KindOf(http.Request.Method, http.Request.Path.Value ?? "") is null ? next(http) : LimitAsync(limiter, http, next));
    }

    private static async Task LimitAsync(PartitionedRateLimiter<HttpContext> limiter, HttpContext http, RequestDelegate next)
    {
        using var lease = limiter.AttemptAcquire(http);
        if (!lease.IsAcquired)
        {
            await RejectAsync(http, lease);
            return;
        }

        await next(http);
    }

    /// <summary>Which limit a request counts against, if any (null: none).</summary>
    public static string? KindOf(string method, string path)
    {
        // Any case and a trailing slash: routes match paths so, and a limit chosen by one spelling alone was no limit.
        if (HttpMethods.IsPost(method)
            && (path.StartsWith("/mint/v1/mint/quote/", StringComparison.OrdinalIgnoreCase) || path.StartsWith("/mint/v1/melt/quote/", StringComparison.OrdinalIgnoreCase)))
        {
            return QuotePartition;
        }

        return string.Equals(path.TrimEnd('/'), "/provider/connect", StringComparison.OrdinalIgnoreCase) ? HandshakePartition : null;
    }

    private static RateLimitPartition<string> Partition(HttpContext http, MarketOptions options)
    {
        var kind = KindOf(http.Request.Method, http.Request.Path.Value ?? "");
        var ip = http.Connection.RemoteIpAddress;
        if (kind is null || ip is null || (IPAddress.IsLoopback(ip) && !options.RateLimitLoopback))
        {
            return RateLimitPartition.GetNoLimiter("");
        }

        var permits = kind == QuotePartition ? options.QuoteRateLimit : options.HandshakeRateLimit;
        return RateLimitPartition.GetFixedWindowLimiter(PartitionKey(kind, ip), _ => new FixedWindowRateLimiterOptions
        {
            PermitLimit = permits,
            Window = options.RateLimitWindow,
            QueueLimit = 0,
            AutoReplenishment = true,
        });
    }

    /// <summary>
    /// The partition a client's requests of <paramref name="kind"/> count in: per IPv4 address, per /64 for IPv6
    /// (<see cref="Mint.ClientConnections.ClientOf"/>), as a host is usually given a whole /64 and counting single IPv6
    /// addresses would bound nothing.
    /// </summary>
    public static string PartitionKey(string kind, IPAddress ip) => kind + "|" + Mint.ClientConnections.ClientOf(ip);

    /// <summary>The market's one client limiter, disposed with the container.</summary>
    private sealed class ClientLimiter(PartitionedRateLimiter<HttpContext> limiter) : IAsyncDisposable
    {
        public PartitionedRateLimiter<HttpContext> Limiter => limiter;

        public ValueTask DisposeAsync() => limiter.DisposeAsync();
    }

    private static async ValueTask RejectAsync(HttpContext http, RateLimitLease lease)
    {
        var retryAfter = lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds)) : 1;
        http.Response.Headers.RetryAfter = retryAfter.ToString(CultureInfo.InvariantCulture);
        var message = $"too many requests from this address; retry after {retryAfter} s";
        // The mint speaks Cashu's error shape; everything else the market's.
        object body = (http.Request.Path.Value ?? "").StartsWith("/mint/", StringComparison.OrdinalIgnoreCase)
            ? new ErrorResponse(message, 0)
            : new { error = new { message, type = "rate_limit_error", code = "rate_limited" } };
        await Results.Json(body, statusCode: StatusCodes.Status429TooManyRequests).ExecuteAsync(http);
    }
}
