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
/// alike: the session counts both), its peak-EWMA latency and parking. Only what changed is written, and only under the
/// link's own epoch (a link taken over meanwhile is not overwritten). This sharing is what keeps power-of-two-choices on
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
        var updates = new List<LinkPublication>();
        var pending = new List<(ProviderSession Session, Published Next)>();
        foreach (var session in directory.Snapshot)
        {
            if (session.LinkEpoch == 0 || session.Capabilities is not { } capabilities)
            {
                continue;
            }

            var figures = new LinkFigures(session.Accepting, session.InFlight, Math.Round(session.LatencyEstimateMs, 1), session.ParkedUntil, null);
            _published.TryGetValue(session, out var last);
            var newCapabilities = !ReferenceEquals(last?.Capabilities, capabilities);
            // Load compares by value: every heartbeat brings a new LoadFigures, and an idle provider's are all equal
            // (10,000 idle providers would otherwise cost a store write per heartbeat).
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

        await links.PublishAsync(registry.NodeId, updates, time.GetUtcNow(), cancellationToken);
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
