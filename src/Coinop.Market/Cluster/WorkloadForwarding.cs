using System.Net;
using Coinop.Market.Inference;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;

namespace Coinop.Market.Cluster;

/// <summary>
/// Consumers' <c>/api/workloads</c> calls reaching a node that does not supervise the workloads are relayed, as they are
/// (credentials, body, query), to the node that does (<see cref="WorkloadSupervision"/>), and its answer streamed back
/// (workload logs included). The target is the lock holder named in the store, never anything the consumer sent. A
/// relayed request carries <see cref="ForwardedHeader"/> and is never relayed again: if the receiving node no longer
/// supervises, the consumer gets a 503 to retry.
/// </summary>
public sealed class WorkloadForwarding : IDisposable
{
    public const string ForwardedHeader = "X-Coinop-Forwarded-By";
    private const string Prefix = "/api/workloads";
    private const long MaxBody = 4 * 1024 * 1024;

    private static readonly HashSet<string> HopByHop = new(StringComparer.OrdinalIgnoreCase)
    {
        "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade", "TE", "Trailer", "Host", "Content-Length",
        ForwardedHeader, NodeAuth.NodeHeader, NodeAuth.TimeHeader, NodeAuth.SignatureHeader,
    };

    private readonly WorkloadSupervision _supervision;
    private readonly NodeRegistry _registry;
    private readonly ILogger<WorkloadForwarding> _logger;
    private readonly HttpClient _http = new(new SocketsHttpHandler
    {
        ConnectTimeout = TimeSpan.FromSeconds(2),
        AutomaticDecompression = DecompressionMethods.None,
        UseProxy = false,
        AllowAutoRedirect = false,
        UseCookies = false,
    })
    { Timeout = Timeout.InfiniteTimeSpan };

    public WorkloadForwarding(WorkloadSupervision supervision, NodeRegistry registry, ILogger<WorkloadForwarding> logger)
    {
        _supervision = supervision;
        _registry = registry;
        _logger = logger;
    }

    public async Task InvokeAsync(HttpContext http, RequestDelegate next)
    {
        // Any case: routing matches paths whatever their case, and a workload call this node served itself would wait for
        // a supervisor that never loads here.
        if (!http.Request.Path.StartsWithSegments(Prefix, StringComparison.OrdinalIgnoreCase) || _supervision.IsHeld)
        {
            await next(http);
            return;
        }

        var ct = http.RequestAborted;
        if (http.Request.Headers.ContainsKey(ForwardedHeader) || _supervision.Holder is not { } holder)
        {
            http.Response.Headers.RetryAfter = "1";
            await Unavailable("no node supervises workloads right now (one is taking over); retry in a moment").WriteResponseAsync(http.Response, ErrorShape.OpenAi, ct);
            return;
        }

        if (http.WebSockets.IsWebSocketRequest)
        {
            await Unavailable($"connect to the node that supervises workloads ({holder.PublicUrl}) for workload access")
                .WriteResponseAsync(http.Response, ErrorShape.OpenAi, ct);
            return;
        }

        if (http.Request.ContentLength > MaxBody)
        {
            await new ApiError(413, "invalid_request_error", "too_large", $"the request body is over {MaxBody} bytes").WriteResponseAsync(http.Response, ErrorShape.OpenAi, ct);
            return;
        }

        using var request = new HttpRequestMessage(new HttpMethod(http.Request.Method), holder.NodeUrl.TrimEnd('/') + http.Request.Path + http.Request.QueryString);
        if (http.Request.ContentLength > 0 || http.Request.Headers.TransferEncoding.Count > 0)
        {
            using var buffer = new MemoryStream();
            await http.Request.Body.CopyToAsync(buffer, ct);
            if (buffer.Length > MaxBody)
            {
                await new ApiError(413, "invalid_request_error", "too_large", $"the request body is over {MaxBody} bytes").WriteResponseAsync(http.Response, ErrorShape.OpenAi, ct);
                return;
            }

            request.Content = new ByteArrayContent(buffer.ToArray());
        }

        foreach (var (name, values) in http.Request.Headers)
        {
            if (HopByHop.Contains(name))
            {
                continue;
            }

            if (!request.Headers.TryAddWithoutValidation(name, (IEnumerable<string?>)values))
            {
                request.Content?.Headers.TryAddWithoutValidation(name, (IEnumerable<string?>)values);
            }
        }

        request.Headers.TryAddWithoutValidation(ForwardedHeader, _registry.NodeId);
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
        }
        catch (HttpRequestException ex)
        {
            ClusterLog.WorkloadForwardFailed(_logger, http.Request.Method, http.Request.Path, holder.NodeId, ex);
            http.Response.Headers.RetryAfter = "1";
            await Unavailable("the node that supervises workloads did not answer; retry in a moment").WriteResponseAsync(http.Response, ErrorShape.OpenAi, ct);
            return;
        }

        using (response)
        {
            http.Response.StatusCode = (int)response.StatusCode;
            foreach (var (name, values) in response.Headers.Concat(response.Content.Headers))
            {
                if (!HopByHop.Contains(name))
                {
                    http.Response.Headers[name] = values.ToArray();
                }
            }

            http.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
            await using var body = await response.Content.ReadAsStreamAsync(ct);
            var chunk = new byte[16 * 1024];
            int read;
            while ((read = await body.ReadAsync(chunk, ct)) > 0)
            {
                await http.Response.Body.WriteAsync(chunk.AsMemory(0, read), ct);
                await http.Response.Body.FlushAsync(ct); // logs stream: pass each piece on as it comes
            }
        }
    }

    private static ApiError Unavailable(string message) => new(503, "service_unavailable", "workloads_elsewhere", message);

    public void Dispose() => _http.Dispose();
}
