using System.Threading.Channels;
using Coinop.Provider.Hosting;
using Microsoft.Extensions.Logging;

namespace Coinop.Provider.Backends;

/// <summary>
/// Keeps the provider's <see cref="ModelCatalog"/> current: probes the named backends (or the standard local
/// ports) at start, every <see cref="ProviderOptions.RediscoverInterval"/>, more often while nothing is found or
/// a named backend is down, and at once when a job finds a backend failing.
/// </summary>
public sealed class BackendDiscovery(ProviderOptions options, BackendProbe probe, TimeProvider time, ILogger logger)
{
    private readonly Channel<bool> _nudges = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly TaskCompletionSource _firstPass = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Dictionary<BackendEndpoint, bool> _health = [];
    private volatile ModelCatalog _current = ModelCatalog.Empty;
    private bool _reportedNothing;

    /// <summary>Raised after a pass whose offers differ from the previous pass's.</summary>
    public event Action<ModelCatalog>? OffersChanged;

    public ModelCatalog Current => _current;

    /// <summary>Completes when the first pass has finished (capabilities wait for it).</summary>
    public Task FirstPass => _firstPass.Task;

    private bool AutoProbe => options.Backends.Count == 0;

    private IReadOnlyList<BackendEndpoint> Candidates => AutoProbe
        ? [.. BackendKinds.StandardPorts.Select(p => new BackendEndpoint(p.Kind, new Uri($"http://{options.ProbeHost}:{p.Port}/")))]
        : options.Backends;

    /// <summary>Asks for a discovery pass soon (a job saw its backend fail).</summary>
    public void Nudge() => _nudges.Writer.TryWrite(true);

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            var catalog = await DiscoverOnceAsync(cancellationToken);
            var wait = catalog.Offers.Count == 0 || (!AutoProbe && catalog.Backends.Any(b => !b.Healthy))
                ? options.RetryProbeInterval
                : options.RediscoverInterval;
            using var timer = new CancellationTokenSource(wait, time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(timer.Token, cancellationToken);
            try
            {
                await _nudges.Reader.ReadAsync(linked.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // The interval passed.
            }
        }
    }

    public async Task<ModelCatalog> DiscoverOnceAsync(CancellationToken cancellationToken)
    {
        var statuses = await Task.WhenAll(Candidates.Select(b => probe.ProbeAsync(b, options.ProbeTimeout, cancellationToken)));
        var catalog = ModelCatalog.Build(statuses, options.Prices, options.DefaultPrice, options.MaxConcurrent);
        Report(catalog);
        var previous = _current;
        _current = catalog;
        _firstPass.TrySetResult();
        if (!previous.SameOffersAs(catalog))
        {
            OffersChanged?.Invoke(catalog);
        }

        return catalog;
    }

    /// <summary>Logs health changes only, so a steady state stays quiet.</summary>
    private void Report(ModelCatalog catalog)
    {
        foreach (var status in catalog.Backends)
        {
            var known = _health.TryGetValue(status.Backend, out var wasHealthy);
            _health[status.Backend] = status.Healthy;
            if (status.Healthy && (!known || !wasHealthy))
            {
                ProviderLog.BackendUp(logger, status.Backend.ToString(), status.Models.Count, string.Join(", ", status.Models.Select(m => m.Model)));
            }
            else if (!status.Healthy && (known ? wasHealthy : !AutoProbe))
            {
                // An unanswered standard port is normal when probing; a named backend that is down is worth a line.
                ProviderLog.BackendDown(logger, status.Backend.ToString(), status.Problem ?? "unknown");
            }
        }

        if (catalog.Offers.Count == 0 && !_reportedNothing)
        {
            ProviderLog.NothingFound(logger, string.Join(", ", catalog.Backends.Select(b => b.Backend.ToString())), options.RetryProbeInterval.TotalSeconds);
        }

        _reportedNothing = catalog.Offers.Count == 0;
    }
}
