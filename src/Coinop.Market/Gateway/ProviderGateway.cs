using System.Net.WebSockets;
using Coinop.Core.Protocol;
using Coinop.Market.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Coinop.Market.Gateway;

/// <summary>
/// <c>GET /provider/connect</c>: upgrades to a WebSocket, authenticates the provider, then runs its session
/// until the socket closes. On market shutdown every provider socket is closed with 1001 <c>drain:deploy</c>.
/// </summary>
public sealed class ProviderGateway(
    ProviderHandshake handshake,
    ProviderDirectory directory,
    ProviderLiveness liveness,
    IProviderLinks links,
    MarketOptions options,
    TimeProvider time,
    IHostApplicationLifetime lifetime,
    ILoggerFactory loggerFactory,
    IProviderWorkloads? workloads = null) : IHostedService
{
    /// <summary>
    /// No WebSocket keep-alive on provider links: the provider's heartbeats (every TTL/2, acknowledged) already carry
    /// traffic both ways and decide liveness (TTL + grace, then 4408). A keep-alive was one timer and one frame per link
    /// every 15 s, 667 frames/s at 10,000 providers, and it detected nothing (an unanswered pong fails no sooner than TCP).
    /// A proxy in front must let a link idle longer than the largest TTL + grace (docs/operations.md).
    /// </summary>
    private static readonly WebSocketAcceptContext ProviderLink = new() { KeepAliveInterval = TimeSpan.Zero };

    private readonly ILogger _logger = loggerFactory.CreateLogger<ProviderGateway>();
    private readonly Lock _announcing = new();
    private CancellationTokenRegistration _stopping;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _stopping = lifetime.ApplicationStopping.Register(CloseAllForShutdown);
        links.NodeUrlsChanged += AnnounceNodes;
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        links.NodeUrlsChanged -= AnnounceNodes;
        _stopping.Dispose();
        return Task.CompletedTask;
    }

    public async Task HandleAsync(HttpContext context)
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            context.Response.StatusCode = StatusCodes.Status400BadRequest;
            await context.Response.WriteAsJsonAsync(new GatewayError("this endpoint takes a WebSocket upgrade"),
                GatewayJsonContext.Default.GatewayError, cancellationToken: context.RequestAborted);
            return;
        }

        using var socket = await context.WebSockets.AcceptWebSocketAsync(ProviderLink);
        var aborted = context.RequestAborted;
        try
        {
            var result = await handshake.RunAsync(socket, aborted);
            if (result.ProviderId is null)
            {
                GatewayLog.HandshakeRefused(_logger, result.FailureReason!);
                await RefuseAsync(socket, result.FailureReason!, aborted);
                return;
            }

            await RunSessionAsync(socket, result.ProviderId, result.Name!, aborted);
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException)
        {
            // The provider went away during the handshake.
        }
        catch (Exception ex)
        {
            GatewayLog.ConnectionFailed(_logger, ex);
        }
    }

    private async Task RunSessionAsync(WebSocket socket, string providerId, string name, CancellationToken aborted)
    {
        var maxTextFrame = (int)Math.Min(int.MaxValue - 1024 * 1024, options.MaxRequestBodyBytes + 64 * 1024);
        await using var session = new ProviderSession(providerId, name, socket, time, maxTextFrame, _logger, workloads);
        // The link is recorded before anything is routed to it: a session of this provider on another node is replaced
        // (its epoch is stale from now on), and writes made for this one are fenced on its epoch.
        session.LinkEpoch = await links.LinkAsync(providerId, name, aborted);
        ProviderSession? previous;
        lock (_announcing)
        {
            // Registered and greeted in one step: a change of the nodes announced in between would reach the provider
            // before its auth_ok, and the agent takes any other first answer as a failed handshake. One announced
            // before this sees no session here, and the auth_ok reads the list it announced.
            previous = directory.Register(session);
            var ttl = liveness.CurrentTtl;
            liveness.Connected(session, ttl);
            session.HeartbeatReceived += OnHeartbeat;
            session.TrySend(new AuthOk(providerId, (int)ttl.TotalMilliseconds, links.NodeUrls));
        }

        if (previous is not null)
        {
            GatewayLog.ProviderReplaced(_logger, providerId);
            previous.Close(CloseCodes.Replaced, "replaced by a newer connection");
        }
        GatewayLog.ProviderConnected(_logger, providerId, name);
        if (lifetime.ApplicationStopping.IsCancellationRequested)
        {
            session.CloseForDrain();
        }

        string ended;
        try
        {
            ended = await session.RunAsync(aborted);
        }
        finally
        {
            directory.Remove(session);
            liveness.Disconnected(session, lifetime.ApplicationStopping.IsCancellationRequested);
            workloads?.OnDisconnected(session);
        }

        GatewayLog.ProviderDisconnected(_logger, providerId, ended);
    }

    private void OnHeartbeat(ProviderSession session)
    {
        var ttl = liveness.CurrentTtl;
        liveness.Beat(session, ttl);
        session.TrySend(new HeartbeatAck((int)ttl.TotalMilliseconds));
    }

    /// <summary>The market's nodes changed: every provider linked here learns the new list (to move on when this node goes).</summary>
    private void AnnounceNodes(IReadOnlyList<string> urls)
    {
        var message = new MarketNodes(urls);
        lock (_announcing)
        {
            foreach (var session in directory.Snapshot)
            {
                session.TrySend(message);
            }
        }
    }

    private static async Task RefuseAsync(WebSocket socket, string reason, CancellationToken cancellationToken)
    {
        await socket.SendAsync(ProtocolJson.Serialize(new AuthFailed(reason)), WebSocketMessageType.Text, true, cancellationToken);
        await socket.CloseOutputAsync((WebSocketCloseStatus)CloseCodes.AuthFailed, reason, cancellationToken);
    }

    private void CloseAllForShutdown()
    {
        var sessions = directory.Snapshot;
        GatewayLog.ClosingForShutdown(_logger, sessions.Length);
        foreach (var session in sessions)
        {
            session.CloseForDrain();
        }
    }
}
