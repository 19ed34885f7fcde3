using Coinop.Core.Cluster;
using Coinop.Core.Protocol;
using Coinop.Market.Gateway;
using Coinop.Storage;
using Coinop.Storage.Cluster;
using Coinop.Storage.Meta;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Coinop.Market.Cluster;

/// <summary>
/// Which node supervises the market's workloads: the one holding a PostgreSQL advisory lock (<see cref="SessionLock"/>),
/// so at most one node's supervisor runs at any instant — the single writer of every workload's state. The others try
/// the lock every <see cref="RetryInterval"/>; a holder killed with -9 frees it with its connection, and the next try
/// anywhere takes over (the new supervisor loads the open workloads from the store like a restarted market). A holder
/// that can no longer show PostgreSQL it holds the lock stops the whole node (crash-only): it must not act as a second
/// writer, and its providers move on to a node that can supervise.
/// <para>Providers offering workloads are sent to the supervising node (<see cref="MarketNodes.Workloads"/>, then a
/// planned close), since the supervisor speaks to the copies over their links; consumers' <c>/api/workloads</c> calls
/// reaching another node are forwarded to it (<see cref="WorkloadForwarding"/>).</para>
/// </summary>
public sealed class WorkloadSupervision(
    Database database,
    IMarketMetaStore meta,
    NodeRegistry registry,
    ClusterView view,
    ProviderDirectory directory,
    IHostApplicationLifetime lifetime,
    TimeProvider time,
    ILogger<WorkloadSupervision> logger) : BackgroundService
{
    /// <summary>The advisory lock's key ("Coinop" workloads).</summary>
    public const long LockKey = 0x436F696E_00000001;

    /// <summary>The duty's name in <c>/api/nodes</c>.</summary>
    public const string Duty = "workload_supervisor";

    private const string MetaKey = "workload_supervisor_node";

    /// <summary>How often a node that does not supervise tries the lock, and the holder checks it still holds it.</summary>
    public static readonly TimeSpan RetryInterval = TimeSpan.FromSeconds(1);

    private readonly TaskCompletionSource _held = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile string? _holder;

    /// <summary>Completes once this node supervises the workloads (it never stops supervising while it runs).</summary>
    public Task Held => _held.Task;

    public bool IsHeld => _held.Task.IsCompleted;

    /// <summary>The node that supervises the workloads, when that is another live node; null when this node does or none does yet.</summary>
    public MarketNode? Holder
    {
        get
        {
            var id = _holder;
            var now = time.GetUtcNow();
            return IsHeld || id is null ? null : view.Nodes.FirstOrDefault(n => n.NodeId == id && n.IsRoutableAt(now) && n.NodeId != registry.NodeId);
        }
    }

    /// <summary>The id of the node supervising the workloads as last read (this node's own when it does).</summary>
    public string? HolderId => IsHeld ? registry.NodeId : _holder;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await registry.Joined.WaitAsync(stoppingToken);
            await using var held = await AcquireAsync(stoppingToken);
            await meta.SetAsync(MetaKey, registry.NodeId, stoppingToken);
            _holder = registry.NodeId;
            ClusterLog.SupervisingWorkloads(logger, registry.NodeId);
            _held.TrySetResult();
            await KeepAsync(held, stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private async Task<SessionLock> AcquireAsync(CancellationToken stoppingToken)
    {
        while (true)
        {
            try
            {
                if (await SessionLock.TryAcquireAsync(database, LockKey, stoppingToken) is { } acquired)
                {
                    return acquired;
                }

                _holder = await meta.GetAsync(MetaKey, stoppingToken);
                SendWorkloadProvidersToHolder();
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                ClusterLog.WorkloadLockFailed(logger, ex);
            }

            await Task.Delay(RetryInterval, time, stoppingToken);
        }
    }

    private async Task KeepAsync(SessionLock held, CancellationToken stoppingToken)
    {
        while (true)
        {
            await Task.Delay(RetryInterval, time, stoppingToken);
            Exception? failure = null;
            try
            {
                if (await held.StillHeldAsync(stoppingToken))
                {
                    continue;
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                failure = ex;
            }

            ClusterLog.WorkloadLockLost(logger, registry.NodeId, failure);
            lifetime.StopApplication();
            return;
        }
    }

    /// <summary>Providers offering workloads that linked here are sent on to the supervising node.</summary>
    private void SendWorkloadProvidersToHolder()
    {
        if (Holder is not { } holder)
        {
            return;
        }

        foreach (var session in directory.Snapshot)
        {
            if (session.WorkloadCapacity is not null && session.Capabilities is not null)
            {
                ClusterLog.WorkloadProviderSent(logger, session.ProviderId, holder.NodeId);
                session.TrySend(new MarketNodes(view.NodeUrls, holder.NodeUrl));
                session.Close(CloseCodes.GoingAway, CloseCodes.DrainDeploy);
            }
        }
    }
}
