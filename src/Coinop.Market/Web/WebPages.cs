using System.Text;
using Coinop.Market.Hosting;
using Coinop.Market.Inference;
using Coinop.Market.Payments;
using Coinop.Storage.Reports;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using QRCoder;

namespace Coinop.Market.Web;

/// <summary>
/// The pages (<c>/</c>, <c>/balance</c>, <c>/admin</c>) and what they call besides the APIs every client uses: the
/// overview and its live events, QR codes for tokens, a balance's recent charges, and the operator's sign-in.
/// </summary>
internal static class WebPages
{
    /// <summary>A cashuB token of several proofs is a few kB; a QR code holds at most 2,953 bytes.</summary>
    public const int MaxQrBytes = 2953;
    public static readonly TimeSpan KeepAlive = TimeSpan.FromSeconds(15);

    public static void Map(IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/", (HttpContext http, WebAssets assets) => assets.ServeAsync(http, "index.html"));
        endpoints.MapGet("/balance", (HttpContext http, WebAssets assets) => assets.ServeAsync(http, "balance.html"));
        endpoints.MapGet("/admin", AdminPageAsync);
        endpoints.MapPost("/admin/login", SignInAsync);
        endpoints.MapPost("/admin/logout", SignOut);
        endpoints.MapGet("/static/{*path}", (string path, HttpContext http, WebAssets assets) => assets.ServeAsync(http, "static/" + path));
        endpoints.MapGet("/favicon.ico", (HttpContext http, WebAssets assets) => assets.ServeAsync(http, "static/favicon.svg"));

        endpoints.MapGet("/api/market/overview", async (MarketOverview overview, CancellationToken ct) =>
            Results.Json(overview.Build(await overview.ThroughputAsync(ct)), WebJsonContext.Default.OverviewView));
        endpoints.MapGet("/api/market/events", EventsAsync);
        endpoints.MapPost("/api/qr", QrAsync);
        endpoints.MapGet("/v1/balance/charges", ChargesAsync);
    }

    private static Task AdminPageAsync(HttpContext http, WebAssets assets, MarketIdentity identity) =>
        AdminAuth.IsAdmin(http.Request, identity.AdminToken)
            ? assets.ServeAsync(http, "admin.html")
            : RefuseAsync(http, assets);

    /// <summary>
    /// Not signed in: a browser (it asks for HTML) gets the sign-in form as the 401; any other client a JSON 401, as from
    /// every other endpoint, so a script never has to parse a page to learn it was refused.
    /// </summary>
    private static Task RefuseAsync(HttpContext http, WebAssets assets) =>
        http.Request.Headers.Accept.Any(a => a?.Contains("text/html", StringComparison.OrdinalIgnoreCase) == true)
            ? assets.ServeAsync(http, "admin-login.html", StatusCodes.Status401Unauthorized)
            : PaymentErrors.Unauthorized("send the admin token: sign in at /admin in a browser, or 'Authorization: Bearer <admin.token>' to /api/admin")
                .WriteResponseAsync(http.Response, ErrorShape.OpenAi, http.RequestAborted);

    private static async Task SignInAsync(HttpContext http, WebAssets assets, MarketIdentity identity, ILoggerFactory loggers)
    {
        string? token = null;
        if (http.Request.HasFormContentType)
        {
            try
            {
                var form = await http.Request.ReadFormAsync(http.RequestAborted);
                token = form["token"].FirstOrDefault()?.Trim();
            }
            catch (Exception ex) when (ex is InvalidDataException || (ex is IOException && ex is not BadHttpRequestException && !http.RequestAborted.IsCancellationRequested))
            {
                // A form that ends mid-part or breaks the multipart limits: the client's mistake, not a 500.
                await ApiError.InvalidBody("the sign-in form is malformed: send token=<admin.token> as a form").WriteResponseAsync(http.Response, ErrorShape.OpenAi, http.RequestAborted);
                return;
            }
        }

        if (token is null || !AdminAuth.FixedEquals(token, identity.AdminToken))
        {
            WebLog.SignInRefused(loggers.CreateLogger(typeof(WebPages)), http.Connection.RemoteIpAddress?.ToString() ?? "unknown");
            await RefuseAsync(http, assets);
            return;
        }

        http.Response.Cookies.Append(AdminAuth.CookieName, AdminAuth.CookieValue(identity.AdminToken), AdminAuth.CookieOptions(http.Request));
        http.Response.Redirect("/admin", permanent: false);
    }

    private static void SignOut(HttpContext http)
    {
        http.Response.Cookies.Delete(AdminAuth.CookieName, AdminAuth.CookieOptions(http.Request));
        http.Response.Redirect("/admin", permanent: false);
    }

    /// <summary>Server-sent events: <c>event: overview</c> with the whole overview whenever it changes, a comment every 15 s otherwise.</summary>
    private static async Task EventsAsync(HttpContext http, MarketPulse pulse, IHostApplicationLifetime lifetime)
    {
        if (!pulse.TryListen())
        {
            await new ApiError(503, "service_unavailable", "too_many_listeners", "too many pages are following the market; retry later")
                .WriteResponseAsync(http.Response, ErrorShape.OpenAi, http.RequestAborted);
            return;
        }

        try
        {
            // The market stopping ends every stream at once instead of holding the shutdown up.
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted, lifetime.ApplicationStopping);
            http.Response.ContentType = "text/event-stream";
            http.Response.Headers.CacheControl = "no-cache";
            http.Response.Headers["X-Accel-Buffering"] = "no";
            var body = http.Response.Body;
            await body.WriteAsync("retry: 3000\n\n"u8.ToArray(), stop.Token);
            await body.FlushAsync(stop.Token);
            long seen = 0;
            while (!stop.IsCancellationRequested)
            {
                var snapshot = await pulse.NextAsync(seen, KeepAlive, stop.Token);
                if (snapshot.Version == seen)
                {
                    await body.WriteAsync(": keep-alive\n\n"u8.ToArray(), stop.Token);
                }
                else
                {
                    seen = snapshot.Version;
                    await body.WriteAsync("event: overview\ndata: "u8.ToArray(), stop.Token);
                    await body.WriteAsync(snapshot.Json, stop.Token);
                    await body.WriteAsync("\n\n"u8.ToArray(), stop.Token);
                }

                await body.FlushAsync(stop.Token);
            }
        }
        catch (OperationCanceledException)
        {
            // The page went away or the market is stopping.
        }
        finally
        {
            pulse.StopListening();
        }
    }

    /// <summary><c>POST /api/qr</c> with the text as the body (text/plain): an SVG QR code of it.</summary>
    private static async Task QrAsync(HttpContext http)
    {
        var buffer = new byte[MaxQrBytes + 1];
        var length = 0;
        int read;
        while (length < buffer.Length && (read = await http.Request.Body.ReadAsync(buffer.AsMemory(length), http.RequestAborted)) > 0)
        {
            length += read;
        }

        if (length == 0 || length > MaxQrBytes)
        {
            await ApiError.InvalidBody($"send the text for the QR code as the body: 1 to {MaxQrBytes} bytes")
                .WriteResponseAsync(http.Response, ErrorShape.OpenAi, http.RequestAborted);
            return;
        }

        string text;
        try
        {
            text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(buffer, 0, length);
        }
        catch (DecoderFallbackException)
        {
            await ApiError.InvalidBody("the body must be UTF-8 text").WriteResponseAsync(http.Response, ErrorShape.OpenAi, http.RequestAborted);
            return;
        }

        using var generator = new QRCodeGenerator();
        using var data = generator.CreateQrCode(text, QRCodeGenerator.ECCLevel.L);
        var svg = new SvgQRCode(data).GetGraphic(4);
        WebAssets.AddSecurityHeaders(http.Response);
        http.Response.Headers.CacheControl = "no-store";
        http.Response.ContentType = "image/svg+xml";
        await http.Response.WriteAsync(svg, http.RequestAborted);
    }

    /// <summary><c>GET /v1/balance/charges?limit=N</c>: the balance named by the Bearer credential and its newest movements.</summary>
    private static async Task<IResult> ChargesAsync(HttpRequest request, Cashier cashier, IMarketReportStore reports, CancellationToken cancellationToken)
    {
        if (PaymentIntake.Bearer(request) is not { } bearer)
        {
            return new ErrorResult(PaymentErrors.MissingApiKey());
        }

        var limit = 20;
        if (request.Query["limit"].FirstOrDefault() is { } text && (!int.TryParse(text, System.Globalization.NumberStyles.None,
            System.Globalization.CultureInfo.InvariantCulture, out limit) || limit is < 1 or > 200))
        {
            return new ErrorResult(new ApiError(400, "invalid_request_error", "invalid_limit", "limit must be a whole number from 1 to 200"));
        }

        if (PaymentIntake.PayerAccountOf(bearer) is not { } account || await cashier.BalanceAsync(account, cancellationToken) is not { } balance)
        {
            return new ErrorResult(PaymentErrors.InvalidApiKey());
        }

        var charges = (await reports.MovementsAsync(account, limit, cancellationToken))
            .Select(m => new BalanceChargeView(m.At, KindOf(m.Event), m.Reference, m.AmountMsat)).ToList();
        return Results.Json(new BalanceChargesView(balance, charges), WebJsonContext.Default.BalanceChargesView);
    }

    private static string KindOf(string journalEvent) => journalEvent switch
    {
        "reserve" or "settle" or "release" => "request",
        "payment" => "top_up",
        "refund" => "refund",
        "collect" => "change",
        _ => journalEvent,
    };
}
