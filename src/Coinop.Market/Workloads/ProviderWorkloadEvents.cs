using System.Diagnostics;
using Coinop.Core.Protocol;
using Coinop.Core.Work;
using Coinop.Market.Gateway;
using Coinop.Storage.Work;
using Coinop.Storage.Workloads;
using Microsoft.Extensions.Logging;
using static Coinop.Core.Workloads.WorkloadInput;

namespace Coinop.Market.Workloads;

/// <summary>
/// What providers tell the supervisor, turned into inputs for the workloads' machines: heartbeats of copies and standbys
/// (answered with the acknowledgement of the leases they renewed), exits and losses, usage records, access receipts and
/// checkpoints (stored only from the copy allowed to run), a provider's session coming up (a new incarnation lost its
/// previous run's copies; reservations are held again) and ending (an owner drain hands its leases back).
/// </summary>
internal sealed class ProviderWorkloadEvents(
    OpenWorkloads open,
    WorkloadDriver driver,
    WorkloadEffectInterpreter effects,
    IWorkStore work,
    IWorkloadUsageStore usage,
    IWorkloadReceiptStore receipts,
    IWorkloadCheckpointStore checkpoints,
    WorkloadMetrics metrics,
    ILogger logger)
{
    // The incarnation each provider last showed: a different one means its previous run (and every copy it had) is gone.
    private readonly Dictionary<string, string> _incarnations = new(StringComparer.Ordinal);

    public async Task HeartbeatAsync(ProviderSession session, WorkloadHeartbeat heartbeat, CancellationToken ct)
    {
        var started = Stopwatch.GetTimestamp();
        var provider = session.ProviderId;
        await LoseCopiesOfOtherIncarnationsAsync(provider, heartbeat.Incarnation, ct);
        var renewed = new List<CopyRef>();
        foreach (var copy in heartbeat.Copies)
        {
            if (open.TryGet(copy.WorkloadId, out var entry))
            {
                await driver.ApplyAsync(entry, new CopyHeartbeat(provider, copy.Epoch), ct, renewed: renewed);
            }
            else
            {
                // Finished, or never known here: whatever runs must stop.
                session.TrySend(new WorkloadStop(copy.WorkloadId, copy.Epoch, "not_current"));
            }
        }

        foreach (var workloadId in heartbeat.Standbys)
        {
            var decision = open.TryGet(workloadId, out var entry) ? await driver.ApplyAsync(entry, new StandbyHeartbeat(provider), ct) : null;
            if (decision is null || decision.Rejection is not null)
            {
                session.TrySend(new WorkloadRelease(workloadId));
            }
        }

        session.TrySend(new WorkloadAck(heartbeat.Seq, renewed));
        metrics.HeartbeatCost.Record(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
    }

    /// <summary>A copy exited or was lost.</summary>
    public async Task ReportAsync(ReportCommand report, CancellationToken ct)
    {
        var ignored = open.TryGet(report.WorkloadId, out var reported)
            ? (await driver.ApplyAsync(reported, report.Input, ct))?.Rejection
            : "the workload is finished or unknown";
        if (ignored is not null)
        {
            WorkloadSupervisorLog.ReportIgnored(logger, report.WorkloadId, report.Input.ToString(), ignored);
        }
    }

    /// <summary>A usage record whose signature the session already checked; the store keeps it only from the current lease holder.</summary>
    public async Task UsageAsync(UsageCommand command, CancellationToken ct)
    {
        if (!await usage.AddAsync(command.ProviderId, command.Record, command.Signed, ct))
        {
            WorkloadSupervisorLog.UsageRefused(logger, command.Record.WorkloadId, command.Record.Epoch, command.ProviderId);
        }
    }

    public async Task ReceiptAsync(ReceiptCommand receipt, CancellationToken ct)
    {
        if (!await receipts.AddAsync(receipt.WorkloadId, receipt.Epoch, receipt.ProviderId, receipt.Sealed, ct))
        {
            WorkloadSupervisorLog.ReceiptRefused(logger, receipt.WorkloadId, receipt.Epoch, receipt.ProviderId);
        }
    }

    public async Task CheckpointAsync(CheckpointCommand command, CancellationToken ct)
    {
        if (!open.TryGet(command.WorkloadId, out var entry) || !entry.Workload.AllowedToRun(command.ProviderId, command.Epoch))
        {
            WorkloadSupervisorLog.CheckpointRefused(logger, command.WorkloadId, command.Epoch, command.ProviderId);
            return;
        }

        var stored = await checkpoints.AddAsync(command.WorkloadId, command.Epoch, command.ProviderId, command.Data, command.Sha256, ct);
        if (stored is null)
        {
            WorkloadSupervisorLog.CheckpointRefused(logger, command.WorkloadId, command.Epoch, command.ProviderId);
            return;
        }

        await driver.ApplyAsync(entry, new CheckpointStored(command.ProviderId, command.Epoch, stored.Id), ct);
    }

    public async Task ProviderUpAsync(ProviderSession session, CancellationToken ct)
    {
        if (session.WorkloadCapacity?.Incarnation is { } incarnation)
        {
            await LoseCopiesOfOtherIncarnationsAsync(session.ProviderId, incarnation, ct);
        }

        // A provider that restarted lost its reservations: hold them again (reserving twice is harmless).
        foreach (var entry in open.All.Where(e => e.Workload.Standbys.Any(s => s.Provider == session.ProviderId)))
        {
            session.TrySend(effects.Start(entry, WorkloadStart.Standby, entry.Workload.Epoch, sealedKey: null, checkpoint: null));
        }
    }

    /// <summary>
    /// A provider that drained and closed its session has stopped every copy it ran (it reports each as lost before
    /// closing): its kernel leases are handed back (owner drain) and whatever it still held is treated as lost.
    /// </summary>
    public async Task ProviderGoneAsync(ProviderSession session, CancellationToken ct)
    {
        if (!session.Draining || session.WorkloadCapacity?.Incarnation is not { } incarnation)
        {
            return;
        }

        var drained = await work.DrainOwnerAsync(new LeaseOwner(session.ProviderId, incarnation), ct);
        WorkloadSupervisorLog.OwnerDrained(logger, session.ProviderId, drained.Released.Count, drained.Abandoned.Count);
        foreach (var entry in open.Snapshot().Where(e => e.Workload.AllowedToRun(session.ProviderId, e.Workload.Epoch)))
        {
            await driver.ApplyAsync(entry, new CopyLost(session.ProviderId, entry.Workload.Epoch, WorkloadLost.ProviderDraining), ct);
        }
    }

    /// <summary>A provider that restarted (a new incarnation) lost every copy its previous run had: no need to wait for eviction.</summary>
    private async Task LoseCopiesOfOtherIncarnationsAsync(string provider, string incarnation, CancellationToken ct)
    {
        if (_incarnations.TryGetValue(provider, out var known) && known == incarnation)
        {
            return; // checked already for this run of the provider
        }

        _incarnations[provider] = incarnation;
        foreach (var entry in open.Snapshot())
        {
            var w = entry.Workload;
            if (w.AllowedToRun(provider, w.Epoch) && entry.Lease is { } lease && lease.Fence == w.Epoch
                && lease.Owner.OwnerId == provider && lease.Owner.IncarnationId != incarnation)
            {
                await driver.ApplyAsync(entry, new CopyLost(provider, w.Epoch, "the provider restarted"), ct);
            }
        }
    }
}
