using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using Coinop.Core.Protocol;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Coinop.Market.Cluster;

/// <summary>Why a forward did not start.</summary>
public enum ForwardRefusal
{
    None,

    /// <summary>The holding node no longer holds the provider at that epoch (it moved or went away).</summary>
    LinkMoved,

    /// <summary>The provider is full or not taking jobs.</summary>
    Busy,

    /// <summary>The holding node could not be reached or did not answer in time.</summary>
    NodeUnreachable,
}

/// <summary>
/// The sending end of the node-to-node channel: posts a job to the node that holds its provider
/// (<c>POST {node}/internal/jobs</c>, signed with <see cref="NodeAuth"/>) and pumps the streamed answer into the attempt.
/// Connections are pooled per node. A node that cannot be reached is skipped for <see cref="ClusterOptions.ForwardSuspension"/>.
/// </summary>
public sealed class ForwardClient : IDisposable
{
    public const string Path = "/internal/jobs";
    public const string ProviderHeader = "X-Coinop-Provider";
    public const string EpochHeader = "X-Coinop-Link-Epoch";

    private readonly HttpClient _http;
    private readonly NodeAuth _auth;
    private readonly NodeRegistry _registry;
    private readonly ClusterOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<ForwardClient> _logger;
    private readonly ClusterMetrics _metrics;
    private readonly ConcurrentDictionary<string, long> _suspendedUntil = new(StringComparer.Ordinal);

    public ForwardClient(NodeAuth auth, NodeRegistry registry, IOptions<ClusterOptions> options, TimeProvider time, ClusterMetrics metrics,
        ILogger<ForwardClient> logger)
    {
        _auth = auth;
        _registry = registry;
        _options = options.Value;
        _time = time;
        _metrics = metrics;
        _logger = logger;
        _http = new HttpClient(new SocketsHttpHandler
        {
            ConnectTimeout = TimeSpan.FromSeconds(2),
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(60),
            AutomaticDecompression = DecompressionMethods.None,
            UseProxy = false,
        })
        {
            Timeout = Timeout.InfiniteTimeSpan,
        };
    }

    /// <summary>True while forwards to <paramref name="nodeId"/> are skipped after a failure to reach it.</summary>
    public bool IsSuspended(string nodeId) =>
        _suspendedUntil.TryGetValue(nodeId, out var until) && _time.GetUtcNow().ToUnixTimeMilliseconds() < until;

    /// <summary>
    /// Sends the job to <paramref name="nodeUrl"/> and, once the holder accepted it, starts pumping its answer into
    /// <paramref name="attempt"/>. Returns why it did not start, or <see cref="ForwardRefusal.None"/>.
    /// </summary>
    internal async Task<ForwardRefusal> StartAsync(string nodeId, string nodeUrl, string providerId, long epoch, JobMessage job, ForwardedAttempt attempt,
        CancellationToken cancellationToken)
    {
        var body = ProtocolJson.Serialize(job);
        using var request = new HttpRequestMessage(HttpMethod.Post, nodeUrl + Path) { Content = new ByteArrayContent(body), Version = HttpVersion.Version11 };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        request.Headers.Add(ProviderHeader, providerId);
        request.Headers.Add(EpochHeader, epoch.ToString(CultureInfo.InvariantCulture));
        foreach (var (name, value) in _auth.Sign(_registry.NodeId, "POST", Path, body))
        {
            request.Headers.Add(name, value);
        }

        using var accept = new CancellationTokenSource(_options.ForwardAcceptTimeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, accept.Token, attempt.Aborted);
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, linked.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested && accept.IsCancellationRequested)
        {
            Suspend(nodeId, "no answer within " + _options.ForwardAcceptTimeout.TotalSeconds.ToString("0.#", CultureInfo.InvariantCulture) + " s");
            return ForwardRefusal.NodeUnreachable;
        }
        catch (HttpRequestException ex)
        {
            Suspend(nodeId, ex.Message);
            return ForwardRefusal.NodeUnreachable;
        }

        if (response.StatusCode != HttpStatusCode.OK)
        {
            using (response)
            {
                _metrics.ForwardRefused(response.StatusCode);
                return response.StatusCode switch
                {
                    HttpStatusCode.Conflict => ForwardRefusal.LinkMoved,
                    HttpStatusCode.ServiceUnavailable or HttpStatusCode.TooManyRequests => ForwardRefusal.Busy,
                    _ => ForwardRefusal.NodeUnreachable, // 401/400: misconfigured (another market's secret?) — never routable
                };
            }
        }

        _metrics.Forwarded();
        _ = attempt.PumpAsync(response, reason => Suspend(nodeId, reason));
        return ForwardRefusal.None;
    }

    public void Dispose() => _http.Dispose();

    private void Suspend(string nodeId, string reason)
    {
        _suspendedUntil[nodeId] = (_time.GetUtcNow() + _options.ForwardSuspension).ToUnixTimeMilliseconds();
        ClusterLog.NodeUnreachable(_logger, nodeId, reason);
    }
}
