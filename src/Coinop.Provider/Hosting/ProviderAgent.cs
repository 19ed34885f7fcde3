using System.Net;
using System.Net.WebSockets;
using Coinop.Core.Protocol;
using Coinop.Provider.Backends;
using Coinop.Provider.Drain;
using Coinop.Provider.Identity;
using Coinop.Provider.Link;
using Coinop.Provider.Load;
using Coinop.Provider.Reconnect;
using Coinop.Provider.Workloads;
using Coinop.Provider.Workloads.Sandboxes;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Coinop.Provider.Hosting;

/// <summary>
/// The provider agent: keeps an outbound WebSocket to the market (reconnecting with backoff), serves the jobs it
/// receives from local inference backends, runs workload copies when started with <c>--workloads</c>, and on stop
/// drains: announces it, stops its workload copies and reports them lost (the market hands them over at once),
/// finishes jobs in flight within <see cref="ProviderOptions.DrainTimeout"/>, then closes the link with 1000.
/// </summary>
public sealed class ProviderAgent : BackgroundService
{
    private readonly ProviderOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<ProviderAgent> _logger;
    private readonly ILogger<WorkloadHost> _workloadLogger;
    private readonly ProviderMetrics _metrics;
    private readonly HttpClient _http;
    private readonly HttpMessageInvoker _jobs;
    private readonly LoadTracker _load;
    private readonly BackendDiscovery _discovery;
    private AgentProcess? _process;
    private AgentContext? _context;
    private volatile MarketSession? _session;

    public ProviderAgent(IOptions<ProviderOptions> options, TimeProvider time, ILogger<ProviderAgent> logger, ProviderMetrics metrics, ILoggerFactory loggers)
    {
        _options = options.Value;
        _time = time;
        _logger = logger;
        _workloadLogger = loggers.CreateLogger<WorkloadHost>();
        _metrics = metrics;
        // The backends are local servers the operator named: no redirects to follow (a job goes to its backend and
        // nowhere else) and no cookies (one consumer's request must not carry what a backend set for another's).
        // Both also take a stage off every job's request.
        var backends = new SocketsHttpHandler
        {
            ConnectTimeout = TimeSpan.FromSeconds(5),
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(60),
            AutomaticDecompression = DecompressionMethods.None,
            AllowAutoRedirect = false,
            UseCookies = false,
        };
        _http = new HttpClient(backends)
        {
            Timeout = Timeout.InfiniteTimeSpan,
            MaxResponseContentBufferSize = 16 * 1024 * 1024,
        };
        // Jobs send on the handler itself: HttpClient adds a linked cancellation source and a buffering stage per
        // request that a streamed relay with its own deadline has no use for.
        _jobs = new HttpMessageInvoker(backends, disposeHandler: false);
        _load = new LoadTracker(time);
        _discovery = new BackendDiscovery(_options, new BackendProbe(_http, time), time, logger);
    }

    /// <summary>The provider id (known once the agent has started).</summary>
    public string? ProviderId => _context?.Identity.ProviderId;

    /// <summary>True while a market session is authenticated.</summary>
    public bool LinkUp => _session is { Authenticated: true };

    public bool Draining => _context?.Draining ?? false;

    /// <summary>What the agent offers now (the last discovery pass).</summary>
    public ModelCatalog Catalog => _discovery.Current;

    public int JobsInFlight => _context?.SlotsInUse ?? 0;

    /// <summary>The load figures the next heartbeat would carry.</summary>
    public LoadFigures Load => _load.Snapshot();

    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        _process = AgentProcess.Acquire(_options.DataDir);
        var identity = ProviderIdentity.LoadOrCreate(_options.DataDir);
        var workloads = _options.Workloads is { } mode ? await CreateWorkloadsAsync(mode, identity, cancellationToken) : null;
        _context = new AgentContext(_options, identity, _discovery, _jobs, _load, _metrics, _time, _logger, workloads);
        workloads?.Start();
        ProviderLog.Starting(_logger, identity.ProviderId, identity.Path, _options.MarketUrl);
        await base.StartAsync(cancellationToken);
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_context is not null)
        {
            await DrainAsync(_context, cancellationToken);
        }

        await base.StopAsync(cancellationToken);
        if (_context?.Workloads is { } workloads)
        {
            await workloads.DisposeAsync();
        }

        _process?.Dispose();
        _process = null;
    }

    /// <summary>The sandbox <c>--workloads</c> names (a <see cref="SandboxException"/> when it cannot run here) and the agent around it.</summary>
    private async Task<WorkloadAgent> CreateWorkloadsAsync(string mode, ProviderIdentity identity, CancellationToken cancellationToken)
    {
        var sandbox = await SandboxSelection.CreateAsync(mode, _options.UnsafeNoSandbox, new LocalSandboxOptions { Limits = _options.WorkloadLimits },
            new DockerSandboxOptions { Egress = _options.WorkloadEgress, Limits = _options.WorkloadLimits },
            _time, _logger, cancellationToken);
        var hostOptions = new WorkloadHostOptions
        {
            DataDirectory = _options.DataDir,
            CpuCores = _options.WorkloadCpuCores ?? Environment.ProcessorCount,
            MemoryMb = _options.WorkloadMemoryMb ?? Math.Max(64, GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 2 / (1024 * 1024)),
            UsageInterval = _options.WorkloadUsageWindow,
        };
        var host = new WorkloadHost(sandbox, hostOptions, identity.SigningKey, _time, _workloadLogger, _metrics);
        var (sealingKey, binding) = identity.CreateSealingKey();
        ProviderLog.WorkloadsReady(_logger, sandbox.Isolation, sandbox.Egress ? "egress" : "no egress", sandbox.ApproximateLimits ? "approximate" : "cgroup", hostOptions.CpuCores, hostOptions.MemoryMb);
        return new WorkloadAgent(host, _options, hostOptions, identity.SigningKey, sealingKey, binding, _time, _logger);
    }

    public override void Dispose()
    {
        base.Dispose();
        _process?.Dispose();
        _context?.Identity.Dispose();
        _jobs.Dispose();
        _http.Dispose();
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var context = _context!;
        var discovery = _discovery.RunAsync(stoppingToken);
        var rotation = new MarketRotation(_options.MarketUrls, new ReconnectBackoff(_options.ReconnectInitialDelay, _options.ReconnectMaxDelay));
        try
        {
            while (!stoppingToken.IsCancellationRequested && !context.Draining)
            {
                using var session = new MarketSession(context, rotation.Current);
                _session = session;
                var outcome = await session.RunAsync(stoppingToken);
                _session = null;
                if (stoppingToken.IsCancellationRequested || context.Draining)
                {
                    break;
                }

                // Whatever ended the link (its node died, drained or refused us), the next attempt goes to the next node.
                // A session that authenticated, or a close the market planned (a deploy), starts over at the initial
                // delay; failing before auth escalates once every node failed in a row.
                rotation.Learn(session.Nodes);
                // While copies run, no attempt waits past half the time left before the first of them stops.
                var untilCopiesStop = context.Workloads?.UntilFirstStop;
                var delay = outcome.Authenticated || outcome.Planned
                    ? ReconnectBackoff.BeforeCopiesStop(rotation.AfterSession(), untilCopiesStop)
                    : rotation.AfterFailure(untilCopiesStop);
                rotation.MoveTo(session.WorkloadNode); // workloads are supervised on one node: go there (only if it is a known node)
                ProviderLog.Disconnected(_logger, outcome.Reason, (long)delay.TotalMilliseconds, rotation.Current);
                await Task.Delay(delay, _time, stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }

        try
        {
            await discovery;
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private async Task DrainAsync(AgentContext context, CancellationToken cancellationToken)
    {
        context.BeginDrain();
        var session = _session;
        ProviderLog.DrainStarted(_logger, _options.DrainTimeout.TotalSeconds, context.SlotsInUse);
        if (session is not { Authenticated: true })
        {
            if (context.Workloads is { } offline)
            {
                await offline.DrainAsync(_options.DrainTimeout, deliver: false); // nobody to tell, but nothing may outlive the agent
            }

            return;
        }

        // One window for everything: jobs in flight keep running while workloads stop, and the host's shutdown
        // timeout allows one DrainTimeout (plus a margin), not two in a row.
        using var deadline = new CancellationTokenSource(_options.DrainTimeout, _time);
        await session.AnnounceDrainAsync(_options.DrainTimeout);
        if (context.Workloads is { } workloads)
        {
            // Stopped and reported before the link closes, so the market hands each workload over at once.
            await workloads.DrainAsync(_options.DrainTimeout);
        }

        using var linked = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, cancellationToken);
        try
        {
            await context.Idle.WaitAsync(linked.Token);
        }
        catch (OperationCanceledException)
        {
            var abandoned = await session.AbandonJobsAsync("the provider shut down before the job finished (drain deadline passed)");
            ProviderLog.DrainAbandoned(_logger, abandoned);
        }

        ProviderLog.Drained(_logger);
        await session.CloseAsync(WebSocketCloseStatus.NormalClosure, "drained", TimeSpan.FromSeconds(5));
    }
}
