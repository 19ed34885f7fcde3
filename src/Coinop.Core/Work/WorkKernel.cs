using System.Text.RegularExpressions;

namespace Coinop.Core.Work;

/// <summary>
/// The durable-work rules as pure functions: each takes an item and the current time and returns a
/// <see cref="WorkDecision"/>. The store applies a decision only if the row is still the one it read (a
/// compare-and-set on the row), so these rules hold across market nodes sharing one database.
/// <para>The guarantees: the fence only grows; a fence is held by at most one lease holder ever; a holder's writes
/// count only at its current fence; a terminal is never overwritten; elapsed time alone never terminalises work
/// (only an explicit deadline, positive death evidence, a reconciled abandon request or a drain does).</para>
/// </summary>
public static partial class WorkKernel
{
    public const string DeadlinePassedReason = "deadline_passed";

    [GeneratedRegex("^[a-z][a-z0-9_]{0,63}$")]
    private static partial Regex KindPattern();

    /// <summary>A new item: fence 0 (nobody holds it), no lease, not started.</summary>
    public static WorkDecision Register(WorkRegistration registration, DateTimeOffset now)
    {
        if (string.IsNullOrWhiteSpace(registration.Id) || registration.Id.Length > 200
            || !KindPattern().IsMatch(registration.Kind ?? "")
            || !Enum.IsDefined(registration.Disposition))
        {
            return WorkDecision.Refuse(null, WorkRefusal.Invalid);
        }

        var item = new WorkItem(registration.Id, registration.Kind!, registration.Disposition, Fence: 0, Lease: null, Started: null,
            registration.Deadline, AbandonRequest: null, Terminal: null, Progress: null, CreatedAt: now);
        return WorkDecision.Change(item, new WorkTransition(WorkEventKinds.Registered, WorkWriters.Market,
            Detail: Text.WireEnum.Name(registration.Disposition)));
    }

    /// <summary>
    /// Claims the item for <paramref name="owner"/>. A free or lapsed lease is taken at fence + 1; the same incarnation
    /// re-entering its own live lease extends it without a new fence. Refused when terminal, externally owned,
    /// owner-bound and started, abandon-requested, past its deadline, or leased live by someone else.
    /// </summary>
    public static WorkDecision Claim(WorkItem item, LeaseOwner owner, string token, LeaseTimings timings, DateTimeOffset now)
    {
        timings.EnsureValid();
        if (item.Lease is { } held && held.IsLiveAt(now) && held.Owner == owner && !item.IsTerminal)
        {
            return WorkDecision.Change(item with { Lease = held with { ExpiresAt = now + timings.Ttl } }, null);
        }

        if (RefuseNewHolder(item, now) is { } refusal)
        {
            return WorkDecision.Refuse(item, refusal);
        }

        if (item.Lease is { } other && other.IsLiveAt(now))
        {
            return WorkDecision.Refuse(item, WorkRefusal.Busy);
        }

        var fence = item.Fence + 1;
        var next = item with { Fence = fence, Lease = new WorkLease(owner, token, fence, now, now + timings.Ttl) };
        return WorkDecision.Change(next, new WorkTransition(WorkEventKinds.Claimed, owner.OwnerId, owner,
            item.Lease is { } lapsed ? $"lease of {lapsed.Owner} at fence {lapsed.Fence} had lapsed" : null));
    }

    /// <summary>
    /// Hands the current fence to a named successor without bumping it. Only a fence nobody ever held qualifies (the
    /// item has no lease, which after a revoke is guaranteed), and only the one the caller expects: this is how the
    /// workload supervisor promotes a standby at exactly the epoch its revoke produced.
    /// </summary>
    public static WorkDecision Grant(WorkItem item, long expectedFence, LeaseOwner owner, string token, LeaseTimings timings, DateTimeOffset now)
    {
        timings.EnsureValid();
        if (RefuseNewHolder(item, now) is { } refusal)
        {
            return WorkDecision.Refuse(item, refusal);
        }

        if (item.Fence != expectedFence)
        {
            return WorkDecision.Refuse(item, WorkRefusal.StaleFence);
        }

        if (item.Lease is not null || item.Fence == 0)
        {
            return WorkDecision.Refuse(item, WorkRefusal.NotRevoked);
        }

        var next = item with { Lease = new WorkLease(owner, token, item.Fence, now, now + timings.Ttl) };
        return WorkDecision.Change(next, new WorkTransition(WorkEventKinds.Granted, WorkWriters.Market, owner));
    }

    /// <summary>Extends the holder's lease; it must still be live and presented at the current fence.</summary>
    public static WorkDecision Renew(WorkItem item, LeaseProof proof, LeaseTimings timings, DateTimeOffset now)
    {
        timings.EnsureValid();
        if (RefuseHolderWrite(item, proof, now, requireLive: true) is { } refusal)
        {
            return WorkDecision.Refuse(item, refusal);
        }

        return WorkDecision.Change(item with { Lease = item.Lease! with { ExpiresAt = now + timings.Ttl } }, null);
    }

    /// <summary>
    /// Records that execution started, under a live lease, immediately before executing. The first marker wins:
    /// a later call is accepted without change and the item shows who started it.
    /// </summary>
    public static WorkDecision RecordStarted(WorkItem item, LeaseProof proof, DateTimeOffset now)
    {
        if (RefuseHolderWrite(item, proof, now, requireLive: true) is { } refusal)
        {
            return WorkDecision.Refuse(item, refusal);
        }

        if (item.Started is not null)
        {
            return WorkDecision.Unchanged(item);
        }

        return WorkDecision.Change(item with { Started = new WorkStarted(proof.Owner, now) },
            new WorkTransition(WorkEventKinds.Started, proof.Owner.OwnerId, proof.Owner));
    }

    /// <summary>
    /// Records progress (kept as the latest) or usage (history only) from the holder at the current fence. A lapsed
    /// but not yet replaced lease still counts: the usage is real and nobody else holds the work.
    /// </summary>
    public static WorkDecision Write(WorkItem item, LeaseProof proof, string eventKind, string payload, DateTimeOffset now)
    {
        if (eventKind is not (WorkEventKinds.Progress or WorkEventKinds.Usage))
        {
            throw new ArgumentException($"'{eventKind}' is not a holder write", nameof(eventKind));
        }

        if (RefuseHolderWrite(item, proof, now, requireLive: false) is { } refusal)
        {
            return WorkDecision.Refuse(item, refusal);
        }

        var next = eventKind == WorkEventKinds.Progress ? item with { Progress = payload } : item;
        return WorkDecision.Change(next, new WorkTransition(eventKind, proof.Owner.OwnerId, proof.Owner, payload));
    }

    /// <summary>
    /// The holder's own terminal (completed, failed or cancelled): validates owner, token, fence and expiry, then
    /// writes the terminal and clears the lease in the same step, so there is no window between the two.
    /// </summary>
    public static WorkDecision Complete(WorkItem item, LeaseProof proof, WorkTerminalKind kind, string? reason, DateTimeOffset now)
    {
        RequireRunTerminal(kind);
        if (RefuseHolderWrite(item, proof, now, requireLive: true) is { } refusal)
        {
            return WorkDecision.Refuse(item, refusal);
        }

        var next = item with { Lease = null, Terminal = new WorkTerminal(kind, now, reason) };
        return WorkDecision.Change(next, new WorkTransition(WorkEventKinds.For(kind), proof.Owner.OwnerId, proof.Owner, reason));
    }

    /// <summary>
    /// The market's own verdict (consumer cancel, the workload supervisor's completed or failed), written without a
    /// lease. Never an abandonment: those come only from a drain or the sweep, with evidence.
    /// </summary>
    public static WorkDecision Finish(WorkItem item, WorkTerminalKind kind, string? reason, DateTimeOffset now)
    {
        RequireRunTerminal(kind);
        if (item.IsTerminal)
        {
            return WorkDecision.Refuse(item, WorkRefusal.Terminal);
        }

        var next = item with { Lease = null, Terminal = new WorkTerminal(kind, now, reason) };
        return WorkDecision.Change(next, new WorkTransition(WorkEventKinds.For(kind), WorkWriters.Market, item.Lease?.Owner, reason));
    }

    /// <summary>Leaves a durable abandon request for the sweep to reconcile; the first request is kept.</summary>
    public static WorkDecision RequestAbandon(WorkItem item, AbandonRequest request)
    {
        if (item.IsTerminal)
        {
            return WorkDecision.Refuse(item, WorkRefusal.Terminal);
        }

        if (item.AbandonRequest is not null)
        {
            return WorkDecision.Unchanged(item);
        }

        return WorkDecision.Change(item with { AbandonRequest = request },
            new WorkTransition(WorkEventKinds.AbandonRequested, request.RequestedBy, Detail: request.Reason));
    }

    /// <summary>
    /// Makes the holder of <paramref name="expectedFence"/> stale: the fence moves on and the lease is dropped.
    /// Idempotent: a fence that already moved past the expected one is accepted unchanged.
    /// </summary>
    public static WorkDecision Revoke(WorkItem item, long expectedFence, string reason)
    {
        if (item.IsTerminal)
        {
            return WorkDecision.Refuse(item, WorkRefusal.Terminal);
        }

        if (item.Fence > expectedFence)
        {
            return WorkDecision.Unchanged(item);
        }

        if (item.Fence < expectedFence)
        {
            return WorkDecision.Refuse(item, WorkRefusal.StaleFence);
        }

        return WorkDecision.Change(item with { Fence = item.Fence + 1, Lease = null },
            new WorkTransition(WorkEventKinds.Revoked, WorkWriters.Market, item.Lease?.Owner, reason));
    }

    /// <summary>
    /// Recovery for one item. In order: an explicit deadline that passed terminalises it (failed, deadline_passed);
    /// a live lease of a holder not proven dead is left alone; then, the lease having lapsed (or its holder being
    /// proven dead): a pending abandon request becomes Abandoned{ReconciledRequest}; externally owned work is left
    /// alone; started owner-bound work becomes Abandoned{Sweep} only with death evidence for its owner and otherwise
    /// stays as it is (observed as lapsed); anything else is released (fence + 1) so another owner can claim it.
    /// </summary>
    public static WorkDecision Sweep(WorkItem item, IReadOnlyCollection<DeathEvidence> deaths, DateTimeOffset now)
    {
        if (item.IsTerminal)
        {
            return WorkDecision.Unchanged(item);
        }

        if (item.Deadline is { } deadline && now >= deadline)
        {
            var failed = item with { Lease = null, Terminal = new WorkTerminal(WorkTerminalKind.Failed, now, DeadlinePassedReason) };
            return WorkDecision.Change(failed, new WorkTransition(WorkEventKinds.Failed, WorkWriters.Sweep, item.Lease?.Owner, DeadlinePassedReason));
        }

        var holderDeath = item.Lease is { } l ? DeathOf(l.Owner, deaths) : null;
        if (item.Lease is { } live && live.IsLiveAt(now) && holderDeath is null)
        {
            return WorkDecision.Unchanged(item);
        }

        if (item.AbandonRequest is { } request)
        {
            var owner = item.Started?.Owner ?? item.Lease?.Owner;
            var lapse = item.Lease is { } lapsed
                ? holderDeath is not null ? $"holder {lapsed.Owner} dead: {holderDeath.Evidence}" : $"lease of {lapsed.Owner} lapsed at {lapsed.ExpiresAt:O}"
                : "no lease held";
            var evidence = $"abandon requested by {request.RequestedBy} at {request.At:O}{(request.Reason is { } r ? $" ({r})" : "")}; {lapse}";
            return Abandon(item, new AbandonEvidence(AbandonWriter.ReconciledRequest, owner, evidence), WorkWriters.Sweep, now);
        }

        switch (item.Disposition)
        {
            case RecoveryDisposition.ExternallyOwned:
                return WorkDecision.Unchanged(item);
            case RecoveryDisposition.OwnerBound when item.Started is { } started:
                var death = DeathOf(started.Owner, deaths) ?? holderDeath;
                return death is null
                    ? WorkDecision.Unchanged(item)
                    : Abandon(item, new AbandonEvidence(AbandonWriter.Sweep, started.Owner, death.Evidence), WorkWriters.Sweep, now);
            default:
                return item.Lease is { } gone
                    ? Release(item, WorkWriters.Sweep, holderDeath is not null ? $"holder dead: {holderDeath.Evidence}" : "lease lapsed", gone.Owner)
                    : WorkDecision.Unchanged(item);
        }
    }

    /// <summary>
    /// A graceful shutdown of one owner (all its incarnations). Its started owner-bound work becomes
    /// Abandoned{OwnerDrain} — unless another owner holds a live lease on it, which defers it (refused as busy).
    /// Anything else it holds (rerunnable, or owner-bound not yet started) is released for others at fence + 1,
    /// so nothing the draining agent still sends can land.
    /// </summary>
    public static WorkDecision DrainOwner(WorkItem item, LeaseOwner drainer, DateTimeOffset now)
    {
        if (item.IsTerminal)
        {
            return WorkDecision.Unchanged(item);
        }

        var lease = item.Lease;
        if (item.Disposition == RecoveryDisposition.OwnerBound && item.Started is { } started && started.Owner.OwnerId == drainer.OwnerId)
        {
            if (lease is not null && lease.IsLiveAt(now) && lease.Owner.OwnerId != drainer.OwnerId)
            {
                return WorkDecision.Refuse(item, WorkRefusal.Busy);
            }

            return Abandon(item, new AbandonEvidence(AbandonWriter.OwnerDrain, started.Owner, $"owner drain by {drainer}"), WorkWriters.OwnerDrain, now);
        }

        if (lease is not null && lease.Owner.OwnerId == drainer.OwnerId && item.Disposition != RecoveryDisposition.ExternallyOwned)
        {
            return Release(item, WorkWriters.OwnerDrain, $"owner drain by {drainer}", lease.Owner);
        }

        return WorkDecision.Unchanged(item);
    }

    public static ObservedWork Observe(WorkItem item, DateTimeOffset now) => new(
        item,
        item.Lease?.Owner,
        item.Lease?.ExpiresAt,
        item.Lease is { } lease && !lease.IsLiveAt(now),
        item.IsTerminal ? null : item.AbandonRequest);

    /// <summary>Why nobody new may take the item (terminal, externally owned, started owner-bound, abandon-requested, past deadline).</summary>
    private static WorkRefusal? RefuseNewHolder(WorkItem item, DateTimeOffset now) => item switch
    {
        { IsTerminal: true } => WorkRefusal.Terminal,
        { Disposition: RecoveryDisposition.ExternallyOwned } => WorkRefusal.ExternallyOwned,
        { Disposition: RecoveryDisposition.OwnerBound, Started: not null } => WorkRefusal.AlreadyStarted,
        { AbandonRequest: not null } => WorkRefusal.AbandonRequested,
        { Deadline: { } d } when now >= d => WorkRefusal.DeadlinePassed,
        _ => null,
    };

    /// <summary>Checks a holder's write: not terminal, at the current fence, by the holder with its token (and live, if required).</summary>
    private static WorkRefusal? RefuseHolderWrite(WorkItem item, LeaseProof proof, DateTimeOffset now, bool requireLive)
    {
        if (item.IsTerminal)
        {
            return WorkRefusal.Terminal;
        }

        if (proof.Fence != item.Fence)
        {
            return WorkRefusal.StaleFence;
        }

        if (item.Lease is not { } lease || lease.Owner != proof.Owner || lease.Token != proof.Token)
        {
            return WorkRefusal.NotLeaseHolder;
        }

        return requireLive && !lease.IsLiveAt(now) ? WorkRefusal.LeaseExpired : null;
    }

    private static DeathEvidence? DeathOf(LeaseOwner owner, IReadOnlyCollection<DeathEvidence> deaths) =>
        deaths.FirstOrDefault(d => d.Owner == owner);

    private static WorkDecision Abandon(WorkItem item, AbandonEvidence evidence, string writer, DateTimeOffset now)
    {
        var next = item with { Lease = null, Terminal = new WorkTerminal(WorkTerminalKind.Abandoned, now, null, evidence) };
        return WorkDecision.Change(next, new WorkTransition(WorkEventKinds.Abandoned, writer, evidence.Owner,
            $"{Text.WireEnum.Name(evidence.Writer)}: {evidence.Evidence}"));
    }

    /// <summary>Drops the lease and moves the fence on, keeping "a lease-less item's fence was never held" true.</summary>
    private static WorkDecision Release(WorkItem item, string writer, string why, LeaseOwner from) =>
        WorkDecision.Change(item with { Fence = item.Fence + 1, Lease = null },
            new WorkTransition(WorkEventKinds.Released, writer, from, why));

    private static void RequireRunTerminal(WorkTerminalKind kind)
    {
        if (kind is not (WorkTerminalKind.Completed or WorkTerminalKind.Failed or WorkTerminalKind.Cancelled))
        {
            throw new ArgumentException("only the drain and the sweep write abandoned terminals", nameof(kind));
        }
    }
}
