using Coinop.Provider.Backends;
using Coinop.Provider.Identity;
using Coinop.Provider.Load;
using Coinop.Provider.Workloads;
using Microsoft.Extensions.Logging;

namespace Coinop.Provider.Hosting;

/// <summary>What every market session and job of one agent shares: settings, identity, backends, load and the job slots.</summary>
internal sealed class AgentContext(
    ProviderOptions options,
    ProviderIdentity identity,
    BackendDiscovery discovery,
    HttpMessageInvoker backends,
    LoadTracker load,
    ProviderMetrics metrics,
    TimeProvider time,
    ILogger logger,
    WorkloadAgent? workloads = null)
{
    private readonly TaskCompletionSource _idle = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _slotsInUse;
    private volatile bool _draining;

    public ProviderOptions Options { get; } = options;

    public ProviderIdentity Identity { get; } = identity;

    /// <summary>The market id this provider answers challenges for (see <see cref="MarketPin"/>).</summary>
    public MarketPin MarketPin { get; } = new(options.DataDir);

    public BackendDiscovery Discovery { get; } = discovery;

    /// <summary>Sends jobs' requests to the backends (the handler discovery's HttpClient uses too).</summary>
    public HttpMessageInvoker Backends { get; } = backends;

    public LoadTracker Load { get; } = load;

    public ProviderMetrics Metrics { get; } = metrics;

    public TimeProvider Time { get; } = time;

    public ILogger Logger { get; } = logger;

    /// <summary>The workload runtime, when the agent runs workloads (<c>--workloads</c>).</summary>
    public WorkloadAgent? Workloads { get; } = workloads;

    public string AgentVersion { get; } = typeof(AgentContext).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";

    public bool Draining => _draining;

    public int SlotsInUse => Volatile.Read(ref _slotsInUse);

    /// <summary>Completes once draining has begun and no job holds a slot.</summary>
    public Task Idle => _idle.Task;

    /// <summary>Takes a job slot unless the agent is draining or at --max-concurrent.</summary>
    public bool TryTakeSlot()
    {
        while (true)
        {
            var current = Volatile.Read(ref _slotsInUse);
            if (_draining || current >= Options.MaxConcurrent)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref _slotsInUse, current + 1, current) == current)
            {
                return true;
            }
        }
    }

    public void ReleaseSlot()
    {
        if (Interlocked.Decrement(ref _slotsInUse) == 0 && _draining)
        {
            _idle.TrySetResult();
        }
    }

    public void BeginDrain()
    {
        _draining = true;
        if (SlotsInUse == 0)
        {
            _idle.TrySetResult();
        }
    }
}
