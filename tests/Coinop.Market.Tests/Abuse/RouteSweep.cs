using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using Coinop.TestKit;
using CsCheck;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Coinop.Market.Tests.Abuse;

/// <summary>One route of the market as its endpoint data source lists it: the pattern, and the methods it accepts (null: any).</summary>
public sealed record SweptRoute(string Pattern, IReadOnlyList<string>? Methods, IReadOnlyList<string> Parameters)
{
    /// <summary>The methods a sweep sends: those accepted, or the common ones for a route that takes any.</summary>
    public IReadOnlyList<string> SweptMethods => Methods ?? ["GET", "POST", "DELETE"];

    /// <summary>A method the route does not accept (to check its 405), or null when it takes any.</summary>
    public string? WrongMethod => Methods is null ? null : new[] { "PATCH", "PUT", "DELETE", "POST", "GET" }.FirstOrDefault(m => !Methods.Contains(m));

    /// <summary>The path with each parameter replaced by <paramref name="value"/> (escaped, except a catch-all's slashes).</summary>
    public string Path(Func<string, string> value) => Regex.Replace(Pattern, @"\{(\*{0,2})([^}:=?]+)[^}]*\}", m =>
    {
        var raw = value(m.Groups[2].Value);
        return m.Groups[1].Length > 0 ? string.Join('/', raw.Split('/').Select(Uri.EscapeDataString)) : Uri.EscapeDataString(raw);
    });

    public override string ToString() => $"{(Methods is null ? "*" : string.Join(',', Methods))} {Pattern}";
}

/// <summary>One hostile request: what it is (for the failure message) and how to build it.</summary>
/// <param name="Route">The route pattern it was made for (for the statistics).</param>
public sealed record HostileRequest(string Method, string PathAndQuery, byte[]? Body, string? ContentType, IReadOnlyList<(string Name, string Value)> Headers,
    string Route = "")
{
    public HttpRequestMessage Build()
    {
        var request = new HttpRequestMessage(new HttpMethod(Method), PathAndQuery);
        if (Body is not null)
        {
            request.Content = new ByteArrayContent(Body);
            if (ContentType is not null)
            {
                request.Content.Headers.TryAddWithoutValidation("Content-Type", ContentType);
            }
        }

        foreach (var (name, value) in Headers)
        {
            if (!request.Headers.TryAddWithoutValidation(name, value))
            {
                request.Content?.Headers.TryAddWithoutValidation(name, value);
            }
        }

        return request;
    }

    public override string ToString()
    {
        var body = Body is null ? "(no body)" : Body.Length > 300 ? $"{Body.Length} bytes: {Encoding.UTF8.GetString(Body, 0, 300)}…" : Encoding.UTF8.GetString(Body);
        var headers = string.Join("; ", Headers.Select(h => $"{h.Name}: {(h.Value.Length > 80 ? h.Value[..80] + "…" : h.Value)}"));
        return $"{Method} {(PathAndQuery.Length > 200 ? PathAndQuery[..200] + "…" : PathAndQuery)} [{ContentType}] {{{headers}}} {body}";
    }
}

/// <summary>
/// The sweep's two halves: the routes, read from the running app's <see cref="EndpointDataSource"/> (so a route added
/// later is swept without anyone listing it), and the verdict on an answer: never a 5xx (but for the few refusals that
/// are about the market's state, not the input, listed in <see cref="StateRefusals"/>), and every 4xx a JSON error.
/// </summary>
public static class RouteSweep
{
    /// <summary>
    /// 5xx answers that say the market has no room right now, not that the input broke it (a hostile but well-formed
    /// workload can ask for more than any provider has): allowed, as a JSON error with this code.
    /// </summary>
    public static readonly IReadOnlySet<string> StateRefusals = new HashSet<string>(StringComparer.Ordinal) { "no_capacity", "no_provider_available" };

    public static IReadOnlyList<SweptRoute> Routes(WebApplication app) =>
        [.. app.Services.GetRequiredService<EndpointDataSource>().Endpoints
            .OfType<RouteEndpoint>()
            .Select(e => new SweptRoute(
                "/" + (e.RoutePattern.RawText ?? "").TrimStart('/'),
                e.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods is { Count: > 0 } methods ? [.. methods] : null,
                [.. e.RoutePattern.Parameters.Select(p => p.Name)]))
            .DistinctBy(r => r.ToString())
            .OrderBy(r => r.Pattern, StringComparer.Ordinal)];

    /// <summary>
    /// The sweep itself: every route and method gets the fixed catalogue, every route that refuses a method gets that
    /// method, and then <paramref name="generated"/> CsCheck-made requests follow (CsCheck prints the seed of a failure;
    /// set CsCheck_Seed to replay it). Fails with one example per route and kind of failure: a bug usually fails many
    /// requests the same way.
    /// </summary>
    public static async Task SweepAsync(HttpClient http, HostileRequests hostile, IReadOnlyList<SweptRoute> routes, IDictionary<string, int> statuses,
        CancellationToken cancellationToken, long generated = 1000)
    {
        var failures = new List<string>();
        var sent = 0;
        foreach (var route in routes)
        {
            foreach (var method in route.SweptMethods)
            {
                foreach (var request in hostile.Fixed(route, method))
                {
                    sent++;
                    if (await BoundedSendAsync(http, request, statuses, cancellationToken) is { } failure)
                    {
                        failures.Add($"{route}: {failure}");
                    }
                }
            }

            if (route.WrongMethod is { } wrong && await BoundedSendAsync(http, hostile.WrongMethod(route, wrong), statuses, cancellationToken) is { } methodFailure)
            {
                failures.Add($"{route}: {methodFailure}");
            }
        }

        var kinds = failures.GroupBy(f => f[..f.IndexOf('\n', StringComparison.Ordinal)]).Select(g => $"[{g.Count()}×] {g.First()}");
        Assert.True(failures.Count == 0, $"{failures.Count} of {sent} hostile requests were answered badly:\n\n{string.Join("\n\n", kinds)}");

        await hostile.Generated(routes).SampleAsync(async request =>
        {
            var failure = await BoundedSendAsync(http, request, statuses, cancellationToken);
            Assert.True(failure is null, failure);
        }, iter: generated, threads: 1);
    }

    /// <summary><see cref="SendAsync"/> within 60 s: a route that hangs, or drops the connection, fails the sweep instead of the test run.</summary>
    private static async Task<string?> BoundedSendAsync(HttpClient http, HostileRequest request, IDictionary<string, int> statuses, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(60));
        try
        {
            return await SendAsync(http, request, statuses, timeout.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return $"no answer within 60 s\n  request: {request}";
        }
        catch (HttpRequestException ex)
        {
            return $"the connection failed ({ex.Message})\n  request: {request}";
        }
    }

    /// <summary>Sends the request and returns what is wrong with the answer, or null; counts the answer's status under its route in <paramref name="statuses"/>.</summary>
    public static async Task<string?> SendAsync(HttpClient http, HostileRequest hostile, IDictionary<string, int>? statuses, CancellationToken cancellationToken)
    {
        using var request = hostile.Build();
        // Headers first: a streaming answer (SSE) that is fine need not be read to its end, which may never come.
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        var status = (int)response.StatusCode;
        if (statuses is not null)
        {
            var key = $"{hostile.Method} {hostile.Route} {status}";
            statuses[key] = statuses.TryGetValue(key, out var n) ? n + 1 : 1;
        }

        if (status < 400)
        {
            return null;
        }

        var mediaType = response.Content.Headers.ContentType?.MediaType;
        var text = await ReadBoundedAsync(response, cancellationToken);
        var verdict = Verdict(status, mediaType, text, hostile.Method == "HEAD");
        if (verdict is not null && status == 400 && text.Length == 0 && await RefusedBeforeRoutingAsync(http, hostile, cancellationToken))
        {
            return null;
        }
        return verdict is null ? null : $"{verdict}\n  answer: {status} {mediaType} {(text.Length > 400 ? text[..400] + "…" : text)}\n  request: {hostile}";
    }

    /// <summary>
    /// Kestrel refuses a request line it cannot take (a NUL in the target, say) with its own bodiless 400 before any
    /// middleware or route sees it, so no route can answer otherwise. A bodiless 400 is that only if the same target and
    /// headers under a path no route serves get the same (any answer from the app there is a JSON 404).
    /// </summary>
    private static async Task<bool> RefusedBeforeRoutingAsync(HttpClient http, HostileRequest hostile, CancellationToken cancellationToken)
    {
        using var probe = (hostile with { PathAndQuery = "/coinop-sweep-no-route" + hostile.PathAndQuery, Body = null }).Build();
        using var response = await http.SendAsync(probe, cancellationToken);
        return response.StatusCode == HttpStatusCode.BadRequest && response.Content.Headers.ContentType is null
            && (await response.Content.ReadAsByteArrayAsync(cancellationToken)).Length == 0;
    }

    /// <summary>What is wrong with an error answer, or null when it is a clean refusal (<see cref="ErrorAnswers"/>, with <see cref="StateRefusals"/>).</summary>
    public static string? Verdict(int status, string? mediaType, string text, bool head) =>
        ErrorAnswers.Problem(status, mediaType, text, head, (s, code) => s == 503 && code is not null && StateRefusals.Contains(code));

    private static async Task<string> ReadBoundedAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        await using var stream = await response.Content.ReadAsStreamAsync(cancellationToken);
        var buffer = new byte[64 * 1024];
        var length = 0;
        int read;
        while (length < buffer.Length && (read = await stream.ReadAsync(buffer.AsMemory(length), cancellationToken)) > 0)
        {
            length += read;
        }

        return Encoding.UTF8.GetString(buffer, 0, length);
    }

    /// <summary>An error answer is a clean refusal, for focused regression assertions.</summary>
    public static async Task AssertCleanRefusalAsync(HttpResponseMessage response, HttpStatusCode expected)
    {
        var text = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.True(expected == response.StatusCode, $"expected {(int)expected}, got {(int)response.StatusCode}: {text}");
        Assert.Null(Verdict((int)response.StatusCode, response.Content.Headers.ContentType?.MediaType, text, head: false));
    }
}
