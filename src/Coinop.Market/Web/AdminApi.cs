using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Coinop.Core.Protocol;
using Coinop.Market.Gateway;
using Coinop.Market.Hosting;
using Coinop.Market.Inference;
using Coinop.Market.Payments;
using Coinop.Storage.Ledger;
using Coinop.Storage.Mint;
using Coinop.Storage.Providers;
using Coinop.Storage.Reports;
using Coinop.Storage.Workloads;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;

namespace Coinop.Market.Web;

/// <summary>
/// The operator's JSON endpoints under <c>/api/admin</c> (see <see cref="AdminAuth"/>): money, traffic, providers (with
/// park, revoke and enrollment codes) and workloads. Reads are bounded (time windows, row limits); actions take a JSON
/// body and answer 4xx with a JSON error for anything wrong.
/// </summary>
internal static class AdminApi
{
    private const int MaxBodyBytes = 16 * 1024;
    private const int ListLimit = 200;

    public static void Map(IEndpointRouteBuilder endpoints)
    {
        var admin = endpoints.MapGroup("/api/admin");
        admin.AddEndpointFilter(async (context, next) =>
        {
            var http = context.HttpContext;
            var identity = (MarketIdentity)http.RequestServices.GetService(typeof(MarketIdentity))!;
            return AdminAuth.IsAdmin(http.Request, identity.AdminToken)
                ? await next(context)
                : new ErrorResult(PaymentErrors.Unauthorized(
                    "send 'Authorization: Bearer <the token in the market's data directory, admin.token>' or sign in at /admin"));
        });
        admin.MapGet("/money", MoneyAsync);
        admin.MapGet("/traffic", TrafficAsync);
        admin.MapGet("/providers", ProvidersAsync);
        admin.MapPost("/providers/{id}/park", ParkAsync);
        admin.MapPost("/providers/{id}/revoke", RevokeAsync);
        admin.MapPost("/enrollment-codes", IssueCodeAsync);
        admin.MapGet("/workloads", WorkloadsAsync);
    }

    private static async Task<IResult> MoneyAsync(HttpRequest request, ILedgerStore ledger, IMarketReportStore reports, IMintKeysetStore keysets, TimeProvider time,
        CancellationToken cancellationToken)
    {
        if (Window(request, TimeSpan.FromHours(24)) is not { } window)
        {
            return BadWindow();
        }

        var now = time.GetUtcNow();
        var s = await ledger.SummaryAsync(cancellationToken);
        var totals = new LedgerTotalsView(s.ReceivedMsat, s.SpentMsat, s.RefundedMsat, s.BalancesMsat, s.HeldMsat, s.ProviderEarnedMsat, s.OwedMsat, s.FeeMsat, s.PaidOutMsat);
        EquationView Equation(string name, long left, long right) => new(name, left, right, left == right);
        var equations = new[]
        {
            Equation("received = spent + refunded + balances + held", s.ReceivedMsat, s.SpentMsat + s.RefundedMsat + s.BalancesMsat + s.HeldMsat),
            Equation("spent = provider earned + fee", s.SpentMsat, s.ProviderEarnedMsat + s.FeeMsat),
            Equation("provider earned = paid out + owed", s.ProviderEarnedMsat, s.PaidOutMsat + s.OwedMsat),
        };

        var bucket = BucketFor(window);
        var since = Floor(now - window, bucket);
        var moved = (await reports.MoneyAsync(since, bucket, cancellationToken)).ToDictionary(b => b.At);
        var series = Buckets(since, now, bucket)
            .Select(at => moved.GetValueOrDefault(at) is { } b
                ? new MoneyPointView(at, b.ReceivedMsat, b.SpentMsat, b.FeeMsat, b.RefundedMsat, b.PaidOutMsat)
                : new MoneyPointView(at, 0, 0, 0, 0, 0))
            .ToList();
        var ecash = (await reports.EcashByKeysetAsync(cancellationToken)).ToDictionary(e => e.KeysetId, StringComparer.Ordinal);
        var keysetViews = (await keysets.ListAsync(cancellationToken))
            .Select(k => ecash.GetValueOrDefault(k.Id) is { } e
                ? new KeysetView(k.Id, k.Unit, k.Active, k.InputFeePpk, e.IssuedSat, e.SpentSat, e.InStockSat, e.OutstandingSat)
                : new KeysetView(k.Id, k.Unit, k.Active, k.InputFeePpk, 0, 0, 0, 0))
            .ToList();
        var quotes = (await reports.OpenQuotesAsync(now, ListLimit, cancellationToken))
            .Select(q => new QuoteView(q.Kind, q.Id, q.State, q.Amount, q.Unit, q.CreatedAt, q.ExpiresAt)).ToList();
        var payouts = (await reports.PayoutsAsync(ListLimit, cancellationToken)).Select(p => new PayoutView(p.At, p.ProviderId, p.AmountMsat)).ToList();
        return Json(new MoneyView(totals, equations, new MoneySeriesView((int)bucket.TotalSeconds, series), keysetViews, quotes, payouts), WebJsonContext.Default.MoneyView);
    }

    private static async Task<IResult> TrafficAsync(HttpRequest request, IMarketReportStore reports, IProviderRegistryStore registry, ProviderDirectory directory,
        TimeProvider time, CancellationToken cancellationToken)
    {
        if (Window(request, TimeSpan.FromMinutes(15)) is not { } window)
        {
            return BadWindow();
        }

        var now = time.GetUtcNow();
        var bucket = window <= TimeSpan.FromMinutes(15) ? TimeSpan.FromSeconds(10) : BucketFor(window);
        var since = Floor(now - window, bucket);
        var series = (await reports.TrafficAsync(since, bucket, cancellationToken))
            .Select(b => new TrafficPointView(b.At, b.Model, b.Outcome, b.Jobs, b.OutputTokens)).ToList();
        var errors = (await reports.ErrorsAsync(since, cancellationToken)).Select(e => new ErrorCountView(e.Code, e.Jobs)).ToList();
        var sessions = directory.Snapshot;
        var queue = new QueueView(
            sessions.Sum(s => s.InFlight),
            sessions.Sum(s => s.Load.QueueDepth),
            sessions.Count(s => s.Capabilities is { MaxConcurrent: > 0 } c && s.InFlight >= c.MaxConcurrent),
            sessions.Length);
        var names = (await registry.ListAsync(cancellationToken)).ToDictionary(r => r.Id, r => r.Name, StringComparer.Ordinal);
        var live = sessions.ToDictionary(s => s.ProviderId, StringComparer.Ordinal);
        var slowest = (await reports.ProviderTrafficAsync(since, cancellationToken))
            .OrderByDescending(p => p.AvgFirstByteMs)
            .Take(10)
            .Select(p => new SlowProviderView(p.ProviderId, names.GetValueOrDefault(p.ProviderId), p.Jobs, Math.Round(p.AvgFirstByteMs, 1), p.MaxFirstByteMs, p.Failed,
                live.GetValueOrDefault(p.ProviderId)?.Load.P95LatencyMs))
            .ToList();
        return Json(new TrafficView((int)window.TotalSeconds, (int)bucket.TotalSeconds, Buckets(since, now, bucket), series, errors, queue, slowest),
            WebJsonContext.Default.TrafficView);
    }

    private static async Task<IResult> ProvidersAsync(IProviderRegistryStore registry, IProviderRevocationStore revocations, IMarketReportStore reports,
        ProviderDirectory directory, MarketOptions options, CancellationToken cancellationToken)
    {
        var known = await registry.ListAsync(cancellationToken);
        var revoked = (await revocations.ListAsync(cancellationToken)).ToDictionary(r => r.ProviderId, StringComparer.Ordinal);
        var accounts = (await reports.ProviderAccountsAsync(cancellationToken)).ToDictionary(a => a.ProviderId, StringComparer.Ordinal);
        var views = new List<AdminProviderView>(known.Count);
        foreach (var record in known)
        {
            var session = directory.Find(record.Id);
            var revocation = revoked.GetValueOrDefault(record.Id);
            var account = accounts.GetValueOrDefault(record.Id);
            var link = revocation is not null ? "revoked"
                : session is null ? (record.Online ? "elsewhere" : "offline")
                : LinkOf(session);
            var models = session?.Offers.Select(o => o.Model).Order(StringComparer.Ordinal).ToList() ?? [];
            views.Add(new AdminProviderView(record.Id, record.Name, link, session is not null, session?.WorkloadCapacity?.Isolation, models, session?.InFlight ?? 0,
                record.EnrolledAt, session?.LastSeen ?? record.LastSeenAt, session?.ParkedUntil, revocation?.RevokedAt, revocation?.Reason,
                account?.EarnedMsat ?? 0, account?.PaidOutMsat ?? 0, account?.OwedMsat ?? 0));
        }

        var codes = (await reports.EnrollmentCodesAsync(50, cancellationToken))
            .Select(c => new EnrollmentCodeItem(c.Code, c.MaxUses, c.Uses, c.CreatedAt, c.ExpiresAt)).ToList();
        return Json(new AdminProvidersView(options.Enrollment.ToString().ToLowerInvariant(), views, codes), WebJsonContext.Default.AdminProvidersView);
    }

    internal static string LinkOf(ProviderSession session) =>
        session.Capabilities is null ? "connecting"
        : session.Draining ? "draining"
        : session.IsParked ? "parked"
        : session.Capabilities.MaxConcurrent > 0 && session.InFlight >= session.Capabilities.MaxConcurrent ? "busy"
        : "online";

    private static async Task<IResult> ParkAsync(string id, HttpContext http, ProviderDirectory directory, TimeProvider time, ILoggerFactory loggers)
    {
        var (body, error) = await ReadAsync(http, WebJsonContext.Default.ParkRequest);
        if (error is not null)
        {
            return error;
        }

        if (body!.Seconds is not { } seconds || !double.IsFinite(seconds) || seconds < 0 || seconds > TimeSpan.FromDays(365).TotalSeconds)
        {
            return new ErrorResult(ApiError.InvalidBody("\"seconds\" must be a number of seconds from 0 (un-park) to 31536000"));
        }

        if (directory.Find(id) is not { } session)
        {
            return NotHere(id);
        }

        var until = time.GetUtcNow() + TimeSpan.FromSeconds(seconds);
        session.ParkUntil(until);
        WebLog.ProviderParked(loggers.CreateLogger(typeof(AdminApi)), id, until);
        return Json(new ParkedView(id, session.ParkedUntil), WebJsonContext.Default.ParkedView);
    }

    private static async Task<IResult> RevokeAsync(string id, HttpContext http, IProviderRegistryStore registry, IProviderRevocationStore revocations,
        ProviderDirectory directory, TimeProvider time, ILoggerFactory loggers)
    {
        var (body, error) = await ReadAsync(http, WebJsonContext.Default.RevokeRequest);
        if (error is not null)
        {
            return error;
        }

        var reason = string.IsNullOrWhiteSpace(body!.Reason) ? "revoked by the operator" : body.Reason.Trim();
        if (reason.Length > 200)
        {
            return new ErrorResult(ApiError.InvalidBody("\"reason\" is at most 200 characters"));
        }

        if (await registry.FindAsync(id, http.RequestAborted) is null)
        {
            return new ErrorResult(new ApiError(404, "invalid_request_error", "unknown_provider", $"no provider {id} is enrolled at this market"));
        }

        await revocations.RevokeAsync(new ProviderRevocation(id, time.GetUtcNow(), reason), http.RequestAborted);
        var stored = await revocations.FindAsync(id, http.RequestAborted);
        var session = directory.Find(id);
        session?.Close(CloseCodes.AuthFailed, "revoked");
        WebLog.ProviderRevoked(loggers.CreateLogger(typeof(AdminApi)), id, stored!.Reason);
        return Json(new RevokedView(id, stored.RevokedAt, stored.Reason, session is not null), WebJsonContext.Default.RevokedView);
    }

    private static async Task<IResult> IssueCodeAsync(HttpContext http, IProviderRegistryStore registry, TimeProvider time, ILoggerFactory loggers)
    {
        var (body, error) = await ReadAsync(http, WebJsonContext.Default.EnrollmentCodeRequest);
        if (error is not null)
        {
            return error;
        }

        var uses = body!.Uses ?? 1;
        var validFor = body.ValidForSeconds ?? EnrollmentCodes.DefaultValidity.TotalSeconds;
        if (uses is < 1 or > EnrollmentCodes.MaxUses)
        {
            return new ErrorResult(ApiError.InvalidBody($"\"uses\" must be from 1 to {EnrollmentCodes.MaxUses}"));
        }

        if (!double.IsFinite(validFor) || validFor < 1 || validFor > EnrollmentCodes.MaxValidity.TotalSeconds)
        {
            return new ErrorResult(ApiError.InvalidBody($"\"valid_for_seconds\" must be from 1 to {EnrollmentCodes.MaxValidity.TotalSeconds:0}"));
        }

        var record = EnrollmentCodes.New(uses, TimeSpan.FromSeconds(validFor), time.GetUtcNow());
        await registry.CreateEnrollmentCodeAsync(record, http.RequestAborted);
        WebLog.EnrollmentCodeIssued(loggers.CreateLogger(typeof(AdminApi)), record.MaxUses, record.ExpiresAt!.Value);
        return Json(new EnrollmentCodeItem(record.Code, record.MaxUses, record.Uses, record.CreatedAt, record.ExpiresAt), WebJsonContext.Default.EnrollmentCodeItem);
    }

    private static async Task<IResult> WorkloadsAsync(IWorkloadStore store, CancellationToken cancellationToken)
    {
        var all = await store.ListAsync(openOnly: false, ListLimit, cancellationToken);
        var views = all.Select(stored =>
        {
            var w = stored.Workload;
            return new AdminWorkloadView(w.Id, w.State, w.Reason, w.Provider, [.. w.Standbys.Select(s => s.Provider)], w.Epoch, w.Attempts,
                string.Join(' ', [w.Spec.Command, .. w.Spec.Args]), w.CreatedAt, w.PaidUntil,
                [.. w.History.Select(h => new AdminHistoryView(h.State, h.Provider, h.At))]);
        }).ToArray();
        return Json(views, WebJsonContext.Default.AdminWorkloadViewArray);
    }

    /// <summary>Reads a small JSON body; anything else (wrong type, too big, not JSON, not an object) is a 4xx.</summary>
    private static async Task<(T? Body, IResult? Error)> ReadAsync<T>(HttpContext http, JsonTypeInfo<T> type)
        where T : class
    {
        // A JSON content type is required: a form on another site cannot send one without CORS, so a signed-in
        // browser cannot be made to act.
        if (http.Request.ContentType is not { } contentType || !contentType.StartsWith("application/json", StringComparison.OrdinalIgnoreCase))
        {
            return (null, new ErrorResult(new ApiError(415, "invalid_request_error", "unsupported_media_type", "send the body as application/json")));
        }

        if (http.Request.ContentLength is > MaxBodyBytes)
        {
            return (null, new ErrorResult(ApiError.TooLarge(MaxBodyBytes)));
        }

        using var buffer = new MemoryStream();
        var chunk = new byte[4096];
        int read;
        while ((read = await http.Request.Body.ReadAsync(chunk, http.RequestAborted)) > 0)
        {
            if (buffer.Length + read > MaxBodyBytes)
            {
                return (null, new ErrorResult(ApiError.TooLarge(MaxBodyBytes)));
            }

            buffer.Write(chunk, 0, read);
        }

        try
        {
            var body = buffer.Length == 0 ? null : JsonSerializer.Deserialize(buffer.GetBuffer().AsSpan(0, (int)buffer.Length), type);
            return body is null ? (null, new ErrorResult(ApiError.InvalidBody("the body must be a JSON object"))) : (body, null);
        }
        catch (JsonException ex)
        {
            return (null, new ErrorResult(ApiError.InvalidBody("the body is not valid JSON for this action: " + ex.Message)));
        }
    }

    /// <summary>The <c>window</c> query parameter: <c>15m</c>, <c>1h</c>, <c>24h</c>, <c>7d</c> and the like, up to 31 days.</summary>
    private static TimeSpan? Window(HttpRequest request, TimeSpan fallback)
    {
        if (request.Query["window"].FirstOrDefault() is not { } text)
        {
            return fallback;
        }

        return Core.Text.DurationText.TryParse(text, out var window) && window >= TimeSpan.FromMinutes(1) && window <= TimeSpan.FromDays(31) ? window : null;
    }

    private static IResult BadWindow() =>
        new ErrorResult(new ApiError(400, "invalid_request_error", "invalid_window", "window must be a duration from 1m to 31d, e.g. 15m, 1h, 24h, 7d"));

    private static IResult NotHere(string id) =>
        new ErrorResult(new ApiError(404, "invalid_request_error", "provider_not_connected", $"provider {id} is not connected to this market node"));

    /// <summary>About a hundred points per chart, on round bucket sizes.</summary>
    private static TimeSpan BucketFor(TimeSpan window) =>
        window <= TimeSpan.FromHours(1) ? TimeSpan.FromMinutes(1)
        : window <= TimeSpan.FromHours(24) ? TimeSpan.FromMinutes(15)
        : window <= TimeSpan.FromDays(7) ? TimeSpan.FromHours(2)
        : TimeSpan.FromHours(8);

    /// <summary>Every bucket's start from <paramref name="since"/> to <paramref name="now"/>: a chart's x axis is time, not rows.</summary>
    private static List<DateTimeOffset> Buckets(DateTimeOffset since, DateTimeOffset now, TimeSpan bucket)
    {
        var all = new List<DateTimeOffset>();
        for (var at = since; at <= now; at += bucket)
        {
            all.Add(at);
        }

        return all;
    }

    private static DateTimeOffset Floor(DateTimeOffset at, TimeSpan bucket)
    {
        var ms = (long)bucket.TotalMilliseconds;
        return DateTimeOffset.FromUnixTimeMilliseconds(at.ToUnixTimeMilliseconds() / ms * ms);
    }

    private static IResult Json<T>(T value, JsonTypeInfo<T> type) => Results.Json(value, type);
}

/// <summary>An <see cref="ApiError"/> as a minimal-API result.</summary>
internal sealed class ErrorResult(ApiError error) : IResult
{
    public ApiError Error { get; } = error;

    public Task ExecuteAsync(HttpContext httpContext) => Error.WriteResponseAsync(httpContext.Response, ErrorShape.OpenAi, httpContext.RequestAborted);
}
