using Coinop.Core.Protocol;
using Coinop.Core.Work;
using Coinop.Core.Workloads;
using Coinop.Market.Gateway;
using Coinop.Storage.Work;
using Coinop.Storage.Workloads;
using Microsoft.Extensions.Logging;
using static Coinop.Core.Workloads.WorkloadEffect;
using static Coinop.Core.Workloads.WorkloadInput;

namespace Coinop.Market.Workloads;

/// <summary>
/// Carries out one effect of a workload's machine: kernel claims, grants, renewals, revokes and finishes through
/// <see cref="IWorkStore"/>; starts, stops and reservations on the providers' sessions; placement of a respawn. What the
/// effect comes to that the machine must hear (a confirmed revoke, a placement, a copy that could not start or whose
/// lease was refused) is returned as the machine's next input.
/// </summary>
internal sealed class WorkloadEffectInterpreter(
    IWorkStore work,
    IWorkloadStore store,
    IWorkloadCheckpointStore checkpoints,
    ProviderDirectory directory,
    WorkloadSupervisorSettings settings,
    PlacementCandidates placement,
    WorkloadMetrics metrics,
    ILogger logger)
{
    private readonly PlacementCandidates _placement = placement;

    /// <param name="renewed">Collects the copies whose lease was renewed (for the heartbeat's acknowledgement).</param>
    public async Task<WorkloadInput?> InterpretAsync(OpenWorkload entry, WorkloadEffect effect, List<CopyRef>? renewed, CancellationToken ct)
    {
        var id = entry.Id;
        switch (effect)
        {
            case StartCopy s:
                return await StartCopyAsync(entry, s.Provider, s.Epoch, s.RestoreCheckpoint, ct);
            case PromoteStandby p:
                return await StartCopyAsync(entry, p.Provider, p.Epoch, p.RestoreCheckpoint, ct);
            case StopCopy s:
                directory.Find(s.Provider)?.TrySend(new WorkloadStop(id, s.Epoch, s.Reason));
                return null;
            case RevokeLease r:
                WorkloadSupervisorLog.Revoking(logger, id, r.Epoch, entry.Workload.Reason ?? "");
                var revoked = await work.RevokeAsync(id, r.Epoch, entry.Workload.Reason ?? "revoked", ct);
                entry.Lease = null;
                if (!revoked.Accepted)
                {
                    WorkloadSupervisorLog.RevokeRefused(logger, id, r.Epoch, revoked.Refusal?.ToString() ?? "");
                    return null;
                }

                return new LeaseRevoked(r.Epoch);
            case RenewLease r:
                var refusal = await RenewAsync(entry, r.Provider, r.Epoch, ct);
                if (refusal is null)
                {
                    renewed?.Add(new CopyRef(id, r.Epoch));
                    return null;
                }

                return new CopyLost(r.Provider, r.Epoch, "lease " + refusal);
            case PlaceCopy p:
                var holders = entry.Workload.Spec.Checkpointed ? (await store.KeyHoldersAsync(id, ct)).ToHashSet(StringComparer.Ordinal) : null;
                var choice = WorkloadPlacement.Respawn(entry.Workload.Spec, p.Avoid, _placement.Collect(), holders);
                if (choice is null)
                {
                    return new PlacementFailed(p.Epoch, "no provider online has room");
                }

                // Saved with the placement: the new copy is paid the rate its provider asks now (unless it served this workload before).
                entry.PlacedRates.TryAdd(choice.ProviderId, choice.Price.MsatPerSecond(entry.Workload.Spec.CpuCores, entry.Workload.Spec.MemoryMb));
                return new CopyPlaced(choice.ProviderId, p.Epoch);
            case ReserveStandby r:
                directory.Find(r.Provider)?.TrySend(Start(entry, WorkloadStart.Standby, entry.Workload.Epoch, sealedKey: null, checkpoint: null));
                return null;
            case ReleaseStandby r:
                directory.Find(r.Provider)?.TrySend(new WorkloadRelease(id));
                return null;
            case FinishWork f:
                var finished = await work.FinishAsync(id, f.Kind, f.Reason, ct);
                if (!finished.Accepted)
                {
                    WorkloadSupervisorLog.FinishRefused(logger, id, finished.Refusal?.ToString() ?? "");
                }

                return null;
            default:
                throw new InvalidOperationException($"unknown workload effect {effect}");
        }
    }

    /// <summary>The <c>workload_start</c> for a copy (<see cref="WorkloadStart.Primary"/>) or a standby reservation of <paramref name="entry"/>.</summary>
    public WorkloadStart Start(OpenWorkload entry, string role, long epoch, string? sealedKey, string? checkpoint)
    {
        var w = entry.Workload;
        return new WorkloadStart(w.Id, epoch, role,
            new WorkloadCopySpec(w.Spec.Command, w.Spec.Args, w.Spec.CpuCores, w.Spec.MemoryMb, w.Spec.Port, w.Spec.Checkpointed),
            sealedKey, checkpoint, entry.Stored.Terms.SealTo, w.PaidUntil.ToUnixTimeMilliseconds(),
            new WorkloadLinkTimings(Ms(settings.Timings.HeartbeatInterval), Ms(settings.Timings.ProviderStopAfter), Ms(settings.CheckpointInterval)));
    }

    /// <summary>
    /// Takes the kernel lease at <paramref name="epoch"/> for the provider (a claim for the first copy, a grant of the
    /// fence the revoke produced for every later one) and sends the start. Anything that prevents it is reported back to
    /// the machine as the copy being lost, which revokes that epoch and moves on.
    /// </summary>
    private async Task<WorkloadInput?> StartCopyAsync(OpenWorkload entry, string provider, long epoch, string? restore, CancellationToken ct)
    {
        var id = entry.Id;
        var session = directory.Find(provider);
        if (session?.WorkloadCapacity is not { Incarnation: { } incarnation } || !session.Accepting)
        {
            return new CopyLost(provider, epoch, "the provider is not connected");
        }

        var owner = new LeaseOwner(provider, incarnation);
        var lease = epoch == 1
            ? await work.ClaimAsync(id, owner, settings.Timings.CopyLease, ct)
            : await work.GrantAsync(id, epoch, owner, settings.Timings.CopyLease, ct);
        if (!lease.Accepted || lease.Item?.Lease is not { } held || held.Fence != epoch || held.Owner != owner)
        {
            return new CopyLost(provider, epoch, $"the lease was refused ({lease.Refusal})");
        }

        entry.Lease = held;
        string? sealedKey = null, checkpoint = null;
        if (entry.Workload.Spec.Checkpointed)
        {
            sealedKey = await store.SealedKeyAsync(id, provider, ct);
            if (restore is not null && await checkpoints.ReadAsync(restore, ct) is { } data)
            {
                checkpoint = Convert.ToBase64String(data);
            }
        }

        if (epoch > 1)
        {
            metrics.Failovers.Add(1);
        }

        WorkloadSupervisorLog.Starting(logger, id, epoch, provider, restore ?? "none");
        return session.TrySend(Start(entry, WorkloadStart.Primary, epoch, sealedKey, checkpoint))
            ? null
            : new CopyLost(provider, epoch, "the provider's link is congested");
    }

    /// <returns>Null when the copy's lease was renewed; otherwise why not.</returns>
    private async Task<string?> RenewAsync(OpenWorkload entry, string provider, long epoch, CancellationToken ct)
    {
        var id = entry.Id;
        if (entry.Lease is not { } lease || lease.Fence != epoch || lease.Owner.OwnerId != provider)
        {
            // After a restart the proof is read back from the kernel.
            lease = (await work.ObserveAsync(id, ct))?.Item.Lease is { } held && held.Fence == epoch && held.Owner.OwnerId == provider
                ? held
                : null!;
            if (lease is null)
            {
                return "not held";
            }
        }

        var renewed = await work.RenewAsync(id, lease.Proof, settings.Timings.CopyLease, ct);
        entry.Lease = renewed.Accepted ? renewed.Item!.Lease : null;
        return renewed.Accepted ? null : Core.Text.WireEnum.Name(renewed.Refusal!.Value);
    }

    private static int Ms(TimeSpan t) => (int)Math.Min(int.MaxValue, Math.Ceiling(t.TotalMilliseconds));
}
