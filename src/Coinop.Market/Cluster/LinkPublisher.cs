using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Coinop.Core.Protocol;
using Coinop.Market.Gateway;
using Coinop.Storage.Cluster;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Coinop.Market.Cluster;

/// <summary>
/// Publishes, every <see cref="ClusterOptions.PublishInterval"/>, what other nodes need to route to the providers linked
/// here: capabilities (when they change), whether the provider takes jobs, its jobs in flight (local and forwarded ones
/// alike: the session counts both), its peak-EWMA latency and parking. Only sessions that signalled a change are looked
/// at (<see cref="ProviderDirectory.TakeChanged"/>), only what changed is written, and only under the link's own epoch (a link taken over meanwhile is not overwritten). This sharing is what keeps power-of-two-choices on
/// several nodes from piling onto one provider.
/// </summary>
public sealed class LinkPublisher(
    ProviderDirectory directory,
    IProviderLinkStore links,
    NodeRegistry registry,
    IOptions<ClusterOptions> options,
    TimeProvider time,
    ILogger<LinkPublisher> logger) : BackgroundService
{
    private readonly ConditionalWeakTable<ProviderSession, Published> _published = [];
    private readonly SemaphoreSlim _pass = new(1, 1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.PublishInterval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try
                {
                    await PublishAsync(stoppingToken);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    ClusterLog.PublishFailed(logger, ex);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>One pass (public so tests can force one).</summary>
    public async Task PublishAsync(CancellationToken cancellationToken)
    {
        // One pass at a time: a forced pass returns only after what a running one took is written.
        await _pass.WaitAsync(cancellationToken);
        try
        {
            await PassAsync(cancellationToken);
        }
        finally
        {
            _pass.Release();
        }
    }

    private async Task PassAsync(CancellationToken cancellationToken)
    {
        // Only sessions whose figures changed since the last pass are looked at (the directory queues them as they
        // change): 10,000 idle providers cost nothing here, where a scan of every session 4 times a second did.
        var changed = new List<ProviderSession>();
        directory.TakeChanged(changed);
        if (changed.Count == 0)
        {
            return;
        }

        var updates = new List<LinkPublication>();
        var pending = new List<(ProviderSession Session, Published Next)>();
        foreach (var session in changed)
        {
            if (session.LinkEpoch == 0 || session.Capabilities is not { } capabilities || !ReferenceEquals(directory.Find(session.ProviderId), session))
            {
                continue; // not routable yet (it says so again when it is), or gone (its link is closed)
            }

            var figures = new LinkFigures(session.Accepting, session.InFlight, Math.Round(session.LatencyEstimateMs, 1), session.ParkedUntil, null);
            _published.TryGetValue(session, out var last);
            var newCapabilities = !ReferenceEquals(last?.Capabilities, capabilities);
            if (!newCapabilities && last is not null && !Differs(last.Figures, figures) && Equals(last.Load, session.Load))
            {
                continue;
            }

            var load = JsonSerializer.Serialize(session.Load, ClusterJsonContext.Default.LoadFigures);
            updates.Add(new LinkPublication(session.ProviderId, session.LinkEpoch, figures with { Load = load },
                newCapabilities ? Encoding.UTF8.GetString(ProtocolJson.Serialize(capabilities)) : null));
            pending.Add((session, new Published(capabilities, figures, session.Load)));
        }

        if (updates.Count == 0)
        {
            return;
        }

        try
        {
            await links.PublishAsync(registry.NodeId, updates, time.GetUtcNow(), cancellationToken);
        }
        catch
        {
            foreach (var (session, _) in pending)
            {
                session.FiguresChanged(); // not written: the next pass tries again
            }

            throw;
        }

        foreach (var (session, next) in pending)
        {
            _published.AddOrUpdate(session, next);
        }
    }

    /// <summary>Latency moves a little all the time; only a change of a tenth (or 5 ms) is worth a write.</summary>
    private static bool Differs(LinkFigures a, LinkFigures b) =>
        a.Accepting != b.Accepting || a.InFlight != b.InFlight || a.ParkedUntil != b.ParkedUntil
        || Math.Abs(a.LatencyMs - b.LatencyMs) > Math.Max(5, a.LatencyMs / 10);

    private sealed record Published(CapabilitiesMessage Capabilities, LinkFigures Figures, LoadFigures Load);
}
