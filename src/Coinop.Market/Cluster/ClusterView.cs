using Coinop.Core.Cluster;
using Coinop.Core.Protocol;
using Coinop.Market.Gateway;
using Coinop.Storage.Cluster;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Coinop.Market.Cluster;

/// <summary>
/// What this node knows of the rest of the market, read from the store every <see cref="ClusterOptions.ViewRefreshInterval"/>:
/// the live nodes, and the providers linked to other nodes (as <see cref="RemoteProvider"/>s the router can pick). It also
/// closes this node's own session of a provider that has linked again elsewhere (its epoch moved on), and gives up on jobs
/// forwarded to a node that is no longer alive. Routing reads <see cref="Snapshot"/>: this node's sessions, then the
/// remote providers (a provider held here is never also taken as remote).
/// </summary>
public sealed class ClusterView : BackgroundService, IRoutableProviders, IHostedLifecycleService
{
    private readonly INodeStore _nodes;
    private readonly IProviderLinkStore _links;
    private readonly ProviderDirectory _directory;
    private readonly NodeRegistry _registry;
    private readonly ForwardClient _client;
    private readonly ClusterOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<ClusterView> _logger;
    private readonly TaskCompletionSource _loaded = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Dictionary<string, RemoteProvider> _byProvider = new(StringComparer.Ordinal);
    private volatile RemoteProvider[] _remote = [];
    private volatile Union _union = new([], [], []);
    private volatile IReadOnlyList<MarketNode> _nodeList = [];
    private volatile IReadOnlyList<string> _nodeUrls = [];
    private TaskCompletionSource _nextRead = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public ClusterView(INodeStore nodes, IProviderLinkStore links, ProviderDirectory directory, NodeRegistry registry, ForwardClient client,
        IOptions<ClusterOptions> options, TimeProvider time, ILogger<ClusterView> logger)
    {
        _nodes = nodes;
        _links = links;
        _directory = directory;
        _registry = registry;
        _client = client;
        _options = options.Value;
        _time = time;
        _logger = logger;
    }

    /// <summary>Completes after the first successful read of the other nodes.</summary>
    public Task Loaded => _loaded.Task;

    /// <summary>Every node in the registry as last read (alive or not).</summary>
    public IReadOnlyList<MarketNode> Nodes => _nodeList;

    /// <summary>Where providers may link: the URLs of the nodes that take work, this one included.</summary>
    public IReadOnlyList<string> NodeUrls => _nodeUrls;

    /// <summary>Raised (on the refresh loop) when the set of node URLs changed.</summary>
    public event Action<IReadOnlyList<string>>? NodeUrlsChanged;

    /// <summary>Providers linked to other nodes, as last read.</summary>
    public IReadOnlyList<RemoteProvider> Remote => _remote;

    public IRoutableProvider[] Snapshot
    {
        get
        {
            var local = _directory.Snapshot;
            var remote = _remote;
            var union = _union;
            if (ReferenceEquals(union.Local, local) && ReferenceEquals(union.Remote, remote))
            {
                return union.All;
            }

            // Rebuilt only when either side changed (rare); racing rebuilds produce equal arrays.
            IRoutableProvider[] all;
            if (remote.Length == 0)
            {
                all = local;
            }
            else
            {
                var list = new List<IRoutableProvider>(local.Length + remote.Length);
                var here = new HashSet<string>(StringComparer.Ordinal);
                foreach (var session in local)
                {
                    list.Add(session);
                    here.Add(session.ProviderId);
                }

                foreach (var provider in remote)
                {
                    if (!here.Contains(provider.ProviderId))
                    {
                        list.Add(provider);
                    }
                }

                all = [.. list];
            }

            _union = new Union(local, remote, all);
            return all;
        }
    }

    /// <summary>The host reports started only once the first read of the other nodes is done (or took too long: then <c>/healthz</c> says joining).</summary>
    public async Task StartedAsync(CancellationToken cancellationToken)
    {
        try
        {
            await Loaded.WaitAsync(TimeSpan.FromSeconds(10), _time, cancellationToken);
        }
        catch (TimeoutException)
        {
        }
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(_options.ViewRefreshInterval, _time);
        try
        {
            do
            {
                try
                {
                    await RefreshAsync(stoppingToken);
                    _loaded.TrySetResult();
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    ClusterLog.ViewRefreshFailed(_logger, ex);
                }
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>
    /// Waits until a read of the market that started after this call is in (at most <see cref="CatchUpTimeout"/>), so a
    /// request that finds no provider for its model is answered from what the store says now, not from a view a refresh
    /// old. False, at once, when no other node is alive: then every provider is this node's and the view is never behind.
    /// </summary>
    public async ValueTask<bool> CatchUpAsync(CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        var me = _registry.NodeId;
        if (_loaded.Task.IsCompleted && !_nodeList.Any(n => n.NodeId != me && n.IsLiveAt(now)))
        {
            return false;
        }

        try
        {
            await Volatile.Read(ref _nextRead).Task.WaitAsync(CatchUpTimeout, _time, cancellationToken);
        }
        catch (TimeoutException)
        {
            // The store is slow or away: answer from the view as it is.
        }

        return true;
    }

    /// <summary>How long a request waits for a fresh read: two refreshes, and never more than a few seconds.</summary>
    private TimeSpan CatchUpTimeout => TimeSpan.FromTicks(Math.Min(_options.ViewRefreshInterval.Ticks * 2 + TimeSpan.TicksPerSecond, 5 * TimeSpan.TicksPerSecond));

    /// <summary>One read of the registry and the open links (public so tests can force one).</summary>
    public async Task RefreshAsync(CancellationToken cancellationToken)
    {
        // Requests waiting to catch up wait for this read only if they came before it started (else for the next one).
        var reading = Interlocked.Exchange(ref _nextRead, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        try
        {
            await ReadAsync(cancellationToken);
        }
        finally
        {
            reading.TrySetResult();
        }
    }

    private async Task ReadAsync(CancellationToken cancellationToken)
    {
        var nodes = await _nodes.ListAsync(cancellationToken);
        var me = _registry.NodeId;
        var listed = await _links.ListOpenElsewhereAsync(me, cancellationToken); // this node's own links are its sessions
        var now = _time.GetUtcNow();
        var byNode = nodes.ToDictionary(n => n.NodeId, StringComparer.Ordinal);
        _nodeList = nodes;

        // Capabilities are read only for links whose published version moved.
        var rows = listed.ToDictionary(l => l.Link.ProviderId, StringComparer.Ordinal);
        var wanted = new List<string>();
        foreach (var row in listed)
        {
            if (row.Link.NodeId != me && LinkRules.IsRoutable(row.Link, byNode.GetValueOrDefault(row.Link.NodeId), now)
                && (!_byProvider.TryGetValue(row.Link.ProviderId, out var known) || known.LinkEpoch != row.Link.Epoch || known.CapabilitiesVersion != row.CapabilitiesVersion))
            {
                wanted.Add(row.Link.ProviderId);
            }
        }

        var capabilities = new Dictionary<string, (long Version, CapabilitiesMessage? Message)>(StringComparer.Ordinal);
        if (wanted.Count > 0)
        {
            foreach (var providerId in wanted)
            {
                rows.Remove(providerId); // closed since the listing unless read again below
            }

            // That second read is later than the listing: its row (figures and capabilities of one moment) replaces the
            // listed one. Pairing newer capabilities with the listing's older figures showed a provider's offers with the
            // "not accepting" of the moment before its first publication: listed by /v1/models, refused by routing.
            foreach (var (row, text) in await _links.CapabilitiesAsync(wanted, cancellationToken))
            {
                var message = text is { Length: > 0 } ? ProtocolJson.TryDeserialize(System.Text.Encoding.UTF8.GetBytes(text)) as CapabilitiesMessage : null;
                rows[row.Link.ProviderId] = row;
                capabilities[row.Link.ProviderId] = (row.CapabilitiesVersion, message);
            }
        }

        // This node's sessions of providers that have linked again since (here or elsewhere) are stale: close them.
        foreach (var session in _directory.Snapshot)
        {
            if (rows.TryGetValue(session.ProviderId, out var row) && session.LinkEpoch > 0 && row.Link.Epoch > session.LinkEpoch)
            {
                ClusterLog.LinkSuperseded(_logger, session.ProviderId, session.LinkEpoch, row.Link.NodeId, row.Link.Epoch);
                session.Close(CloseCodes.Replaced, "linked again to another market node");
            }
        }

        var next = new Dictionary<string, RemoteProvider>(StringComparer.Ordinal);
        foreach (var row in rows.Values)
        {
            var holder = byNode.GetValueOrDefault(row.Link.NodeId);
            if (row.Link.NodeId == me || !LinkRules.IsRoutable(row.Link, holder, now))
            {
                continue;
            }

            if (!_byProvider.TryGetValue(row.Link.ProviderId, out var provider) || provider.LinkEpoch != row.Link.Epoch)
            {
                provider = new RemoteProvider(row.Link, row.Name, holder!, _client, _time);
            }

            var fresh = capabilities.GetValueOrDefault(row.Link.ProviderId);
            provider.Update(row, fresh.Message, fresh.Version, holder!);
            next[row.Link.ProviderId] = provider;
        }

        foreach (var (providerId, gone) in _byProvider)
        {
            if (!next.TryGetValue(providerId, out var replacement) || !ReferenceEquals(replacement, gone))
            {
                // Its node died: jobs forwarded there are lost now (the holder's sessions died with it). Otherwise the link moved
                // or closed, and the holder ends its jobs itself.
                var nodeAlive = byNode.TryGetValue(gone.Holder.NodeId, out var n) && n.IsLiveAt(now) && n.Incarnation == gone.Holder.Incarnation;
                gone.Abandon(nodeAlive ? "the provider's link moved" : "node_lost: the market node holding the provider is gone", loseJobs: !nodeAlive);
            }
        }

        _byProvider.Clear();
        foreach (var (id, provider) in next)
        {
            _byProvider[id] = provider;
        }

        if (next.Count != _remote.Length || _remote.Any(r => !next.TryGetValue(r.ProviderId, out var same) || !ReferenceEquals(same, r)))
        {
            _remote = [.. next.Values];
        }

        var urls = nodes.Where(n => n.IsRoutableAt(now) || n.NodeId == me).Select(n => n.NodeId == me ? _registry.NodeUrl : n.NodeUrl)
            .Distinct(StringComparer.OrdinalIgnoreCase).Order(StringComparer.Ordinal).ToList();
        if (!urls.SequenceEqual(_nodeUrls, StringComparer.OrdinalIgnoreCase))
        {
            _nodeUrls = urls;
            NodeUrlsChanged?.Invoke(urls);
        }
    }

    private sealed record Union(IRoutableProvider[] Local, RemoteProvider[] Remote, IRoutableProvider[] All);
}
