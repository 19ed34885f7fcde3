using Coinop.Core.Work;
using Coinop.Storage.Work;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Coinop.Market.Cluster;

/// <summary>A duty this node holds now: its lease proof (for writes that must be fenced) and the token that ends with it.</summary>
public sealed record DutyLease(string Duty, LeaseProof Proof, CancellationToken Held)
{
    public long Fence => Proof.Fence;
}

/// <summary>
/// Background work that must run on exactly one node at a time (a singleton such as restocking change, or one partition of
/// work such as a dead node's leftovers) runs as a duty: a work item of kind <see cref="WorkKinds.NodeDuty"/> in the
/// durable-work kernel, leased by one node (owner = node id, incarnation = this run) with a fencing token. The holder
/// renews every <see cref="ClusterOptions.DutyRenewInterval"/>; the others try to claim it as often, and get it once the
/// holder's lease lapsed (at most <see cref="ClusterOptions.DutyTtl"/> after it died). The work is cancelled as soon as
/// the holder can no longer be sure it holds the lease (a refused or late renewal), before any other node can claim it.
/// A node that stops hands its duties back at once.
/// </summary>
public sealed class NodeDuties(IWorkStore work, NodeRegistry registry, IOptions<ClusterOptions> options, TimeProvider time, ClusterMetrics metrics,
    ILogger<NodeDuties> logger)
{
    private readonly ClusterOptions _options = options.Value;

    /// <summary>
    /// Runs <paramref name="body"/> whenever this node holds <paramref name="duty"/>, until <paramref name="stopping"/>.
    /// The body gets a token that fires when the lease is lost; it should return promptly then (it is started again if
    /// the duty comes back). An exception from the body is logged and the body started again after a renewal interval.
    /// </summary>
    public async Task RunAsync(string duty, Func<DutyLease, CancellationToken, Task> body, CancellationToken stopping)
    {
        var id = "duty:" + duty;
        try
        {
            await registry.Joined.WaitAsync(stopping);
            await work.RegisterAsync(new WorkRegistration(id, WorkKinds.NodeDuty, RecoveryDisposition.Rerunnable), stopping);
            while (!stopping.IsCancellationRequested)
            {
                var claimed = await TryClaimAsync(id, stopping);
                if (claimed is null)
                {
                    await Task.Delay(_options.DutyRenewInterval, time, stopping);
                    continue;
                }

                ClusterLog.DutyTaken(logger, duty, registry.NodeId, claimed.Fence);
                metrics.DutyTaken(duty);
                await HoldAsync(duty, id, claimed, body, stopping);
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
        }
    }

    private async Task<WorkLease?> TryClaimAsync(string id, CancellationToken stopping)
    {
        try
        {
            var decision = await work.ClaimAsync(id, registry.Owner, _options.DutyTimings, stopping);
            return decision.Accepted && registry.IsReady ? decision.Item!.Lease : null;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            ClusterLog.DutyStoreFailed(logger, id, ex);
            return null;
        }
    }

    private async Task HoldAsync(string duty, string id, WorkLease lease, Func<DutyLease, CancellationToken, Task> body, CancellationToken stopping)
    {
        using var held = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        var renewals = RenewAsync(duty, id, lease, held);
        var dutyLease = new DutyLease(duty, lease.Proof, held.Token);
        while (!held.IsCancellationRequested)
        {
            try
            {
                await body(dutyLease, held.Token);
                await Task.Delay(Timeout.InfiniteTimeSpan, time, held.Token); // done early: hold on to it (nobody else runs it)
            }
            catch (OperationCanceledException) when (held.IsCancellationRequested)
            {
            }
            catch (Exception ex)
            {
                ClusterLog.DutyFailed(logger, duty, ex);
                try
                {
                    await Task.Delay(_options.DutyRenewInterval, time, held.Token);
                }
                catch (OperationCanceledException)
                {
                }
            }
        }

        await held.CancelAsync();
        await renewals;
        if (stopping.IsCancellationRequested)
        {
            // Handed back on purpose: another node takes it now, not after the TTL.
            try
            {
                await work.RevokeAsync(id, lease.Fence, "node stopping", CancellationToken.None);
                ClusterLog.DutyReleased(logger, duty, registry.NodeId);
            }
            catch (Exception ex)
            {
                ClusterLog.DutyStoreFailed(logger, id, ex);
            }
        }
    }

    /// <summary>Renews until the lease is lost (refused, or no successful renewal early enough), then cancels the work.</summary>
    private async Task RenewAsync(string duty, string id, WorkLease lease, CancellationTokenSource held)
    {
        // Acting is safe until the lease's expiry as counted from before the last successful write, minus one interval
        // for clocks: the store's expiry is at least that late, so no other node can have claimed it yet.
        var safeUntil = lease.ExpiresAt - _options.DutyRenewInterval;
        try
        {
            while (true)
            {
                var wait = _options.DutyRenewInterval;
                var left = safeUntil - time.GetUtcNow();
                await Task.Delay(left < wait ? (left > TimeSpan.Zero ? left : TimeSpan.Zero) : wait, time, held.Token);
                if (time.GetUtcNow() >= safeUntil)
                {
                    ClusterLog.DutyLost(logger, duty, "no renewal in time");
                    break;
                }

                var sentAt = time.GetUtcNow();
                try
                {
                    var renewed = await work.RenewAsync(id, lease.Proof, _options.DutyTimings, held.Token);
                    if (!renewed.Accepted)
                    {
                        ClusterLog.DutyLost(logger, duty, renewed.Refusal?.ToString() ?? "refused");
                        break;
                    }

                    safeUntil = sentAt + _options.DutyTtl - _options.DutyRenewInterval;
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    ClusterLog.DutyStoreFailed(logger, id, ex); // try again; the deadline above decides
                }
            }
        }
        catch (OperationCanceledException) when (held.IsCancellationRequested)
        {
            return;
        }

        await held.CancelAsync();
    }
}
