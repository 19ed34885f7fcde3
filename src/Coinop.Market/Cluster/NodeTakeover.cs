using Coinop.Market.Payments;
using Coinop.Storage.Cluster;
using Coinop.Storage.Ledger;
using Coinop.Storage.Payments;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Coinop.Market.Cluster;

/// <summary>
/// The duty <c>node_takeover</c>, on one node at a time: what a node leaves behind when it dies (or leaves) is taken
/// over by another. Its open provider links are closed at their epoch (those providers show offline until they link
/// again, which with several <c>--market</c> URLs takes one reconnect delay); the holds of requests that died with it are
/// released into their payers' balances; its foreign-mint redemptions left half-way are resolved. A node's own leftovers
/// of a previous run are its own business while it lives (it releases them at start). Every write is conditional (a hold
/// closes once, a link closes at its epoch), so even a node wrongly believed dead loses nothing.
/// </summary>
public sealed class NodeTakeover(
    NodeDuties duties,
    NodeRegistry registry,
    INodeStore nodes,
    IProviderLinkStore links,
    IPaymentHoldStore holds,
    IForeignPaymentStore foreign,
    Cashier cashier,
    RequestHolds requestHolds,
    IOptions<ClusterOptions> options,
    TimeProvider time,
    ILogger<NodeTakeover> logger) : BackgroundService
{
    public const string Duty = "node_takeover";
    private static readonly TimeSpan PruneEvery = TimeSpan.FromMinutes(10);
    private DateTimeOffset _prunedAt = DateTimeOffset.MinValue;

    protected override Task ExecuteAsync(CancellationToken stoppingToken) => duties.RunAsync(Duty, LoopAsync, stoppingToken);

    private async Task LoopAsync(DutyLease lease, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(options.Value.TakeoverInterval, time);
        do
        {
            try
            {
                await PassAsync(cancellationToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                TakeoverLog(ex);
            }
        }
        while (await timer.WaitForNextTickAsync(cancellationToken));
    }

    /// <summary>One pass over the registry (public so tests can force one).</summary>
    public async Task PassAsync(CancellationToken cancellationToken)
    {
        var all = await nodes.ListAsync(cancellationToken);
        var now = time.GetUtcNow();
        var byId = all.ToDictionary(n => n.NodeId, StringComparer.Ordinal);
        bool Dead(string nodeId) => nodeId != registry.NodeId && (!byId.TryGetValue(nodeId, out var n) || !n.IsLiveAt(now));

        var closed = await links.CloseForDeadNodesAsync(all, now, cancellationToken);
        if (closed.Count > 0)
        {
            ClusterLog.LinksTakenOver(logger, closed.Count);
        }

        foreach (var nodeId in await holds.NodesHoldingAsync(cancellationToken))
        {
            if (Dead(nodeId))
            {
                var (count, msat) = await requestHolds.ReleaseHoldsOfAsync(nodeId, cancellationToken);
                ClusterLog.HoldsTakenOver(logger, count, msat, nodeId);
            }
        }

        foreach (var nodeId in await foreign.NodesPendingAsync(cancellationToken))
        {
            if (Dead(nodeId))
            {
                await cashier.RecoverForeignAsync(now, cancellationToken, nodeId);
            }
        }

        if (now - _prunedAt >= PruneEvery)
        {
            _prunedAt = now;
            await nodes.PruneAsync(now - options.Value.ForgetNodeAfter, cancellationToken);
        }
    }

    private void TakeoverLog(Exception ex) => ClusterLog.TakeoverFailed(logger, ex);
}
