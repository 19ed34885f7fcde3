using System.Security.Cryptography;
using Coinop.Core.Cluster;
using Coinop.Core.Identity;
using Coinop.Core.Work;
using Coinop.Market.Hosting;
using Coinop.Market.Payments;
using Coinop.Storage.Cluster;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Coinop.Market.Cluster;

/// <summary>
/// This node's membership of the market: it registers a row (node id, a fresh incarnation, the URL other nodes reach it
/// at) before the node serves anything, heartbeats it, marks it draining when the node begins to stop and left once it
/// has stopped, so the others take over at once instead of waiting for the heartbeat to lapse. The node is joined once its
/// row carries the address it really listens on.
/// </summary>
public sealed class NodeRegistry : IHostedLifecycleService, IDisposable
{
    private readonly INodeStore _store;
    private readonly NodeIdentity _identity;
    private readonly NodeAuth _auth;
    private readonly MarketOptions _market;
    private readonly ClusterOptions _options;
    private readonly IServer _server;
    private readonly TimeProvider _time;
    private readonly IHostApplicationLifetime _lifetime;
    private readonly ILogger<NodeRegistry> _logger;
    private readonly TaskCompletionSource _joined = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stopping = new();
    private Task? _loop;
    private long _selfExpiryUnixMs;
    private volatile bool _superseded;
    private volatile bool _draining;
    private bool _disposed;
    private CancellationTokenRegistration _onStopping;

    public NodeRegistry(INodeStore store, NodeIdentity identity, NodeAuth auth, MarketOptions market, IOptions<ClusterOptions> options, IServer server,
        TimeProvider time, IHostApplicationLifetime lifetime, ILogger<NodeRegistry> logger)
    {
        _store = store;
        _identity = identity;
        _auth = auth;
        _market = market;
        _options = options.Value;
        _server = server;
        _time = time;
        _lifetime = lifetime;
        _logger = logger;
        Incarnation = "i" + Base32.EncodeLower(RandomNumberGenerator.GetBytes(10));
        NodeUrl = ConfiguredNodeUrl(market);
    }

    public string NodeId => _identity.NodeId;

    /// <summary>This run of the node; a restart is a new incarnation.</summary>
    public string Incarnation { get; }

    /// <summary>Who holds this node's duty leases.</summary>
    public LeaseOwner Owner => new(NodeId, Incarnation);

    /// <summary>Where other nodes reach this one (<c>--node-url</c>, else the address it listens on).</summary>
    public string NodeUrl { get; private set; }

    public NodeTimings Timings => _options.NodeTimings;

    /// <summary>Completes once the node's row carries the address it listens on.</summary>
    public Task Joined => _joined.Task;

    /// <summary>
    /// Joined, not stopping, and its last heartbeat still counts (with a margin for clocks). A node that cannot reach the
    /// store for longer than its TTL is not ready: the others may be taking its duties and providers over.
    /// </summary>
    public bool IsReady => Status == "ready";

    /// <summary><c>joining</c>, <c>ready</c>, <c>draining</c>, <c>unreachable</c> (heartbeats failing) or <c>superseded</c> (another run took the node id).</summary>
    public string Status =>
        _superseded ? "superseded"
        : _draining ? "draining"
        : !_joined.Task.IsCompleted ? "joining"
        : _time.GetUtcNow().ToUnixTimeMilliseconds() >= Interlocked.Read(ref _selfExpiryUnixMs) ? "unreachable"
        : "ready";

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await _auth.LoadAsync(cancellationToken);
        await JoinAsync(cancellationToken);
        _onStopping = _lifetime.ApplicationStopping.Register(() => _draining = true);
        _loop = HeartbeatLoopAsync(_stopping.Token);
    }

    /// <summary>After the server started listening (and before the host reports started): the row gets the real address.</summary>
    public Task StartedAsync(CancellationToken cancellationToken) => RejoinWithBoundAddressAsync();

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _disposed))
        {
            return; // a host stopped again after it was disposed
        }

        await _stopping.CancelAsync();
        if (_loop is not null)
        {
            await _loop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        try
        {
            // Gone on purpose: the others take over its duties and leftovers now, not after the TTL.
            var now = _time.GetUtcNow();
            await _store.HeartbeatAsync(NodeId, Incarnation, now, now, NodeState.Left, cancellationToken);
            ClusterLog.NodeLeft(_logger, NodeId);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            ClusterLog.HeartbeatFailed(_logger, ex);
        }
    }

    public void Dispose()
    {
        Volatile.Write(ref _disposed, true);
        _onStopping.Dispose();
        _stopping.Dispose();
    }

    private async Task JoinAsync(CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        var expires = now + _options.NodeTtl;
        await _store.JoinAsync(new MarketNode(NodeId, Incarnation, NodeUrl, _market.EffectivePublicUrl, NodeState.Ready, now, now, expires), cancellationToken);
        Interlocked.Exchange(ref _selfExpiryUnixMs, Timings.SelfExpiry(now).ToUnixTimeMilliseconds());
    }

    /// <summary>With port 0 (or no <c>--node-url</c>) the address is only known once the server listens: the row is written again with it.</summary>
    private async Task RejoinWithBoundAddressAsync()
    {
        if (_joined.Task.IsCompleted)
        {
            return;
        }

        try
        {
            if (_market.NodeUrl is null
                && _server.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault() is { } bound && bound.TrimEnd('/') != NodeUrl)
            {
                NodeUrl = bound.TrimEnd('/');
                await JoinAsync(_stopping.Token);
            }

            ClusterLog.NodeJoined(_logger, NodeId, Incarnation, NodeUrl);
            _joined.TrySetResult();
        }
        catch (Exception ex)
        {
            ClusterLog.HeartbeatFailed(_logger, ex);
            _joined.TrySetException(ex);
        }
    }

    private async Task HeartbeatLoopAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(_options.NodeHeartbeatInterval, _time);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                var sentAt = _time.GetUtcNow();
                try
                {
                    if (await _store.HeartbeatAsync(NodeId, Incarnation, sentAt, sentAt + _options.NodeTtl, _draining ? NodeState.Draining : null, cancellationToken))
                    {
                        Interlocked.Exchange(ref _selfExpiryUnixMs, Timings.SelfExpiry(sentAt).ToUnixTimeMilliseconds());
                    }
                    else if (!_superseded)
                    {
                        _superseded = true;
                        ClusterLog.NodeSuperseded(_logger, NodeId, Incarnation);
                    }
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    ClusterLog.HeartbeatFailed(_logger, ex);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    private static string ConfiguredNodeUrl(MarketOptions market) =>
        (market.NodeUrl ?? market.Urls.Split(';', StringSplitOptions.RemoveEmptyEntries)[0]).TrimEnd('/');
}
