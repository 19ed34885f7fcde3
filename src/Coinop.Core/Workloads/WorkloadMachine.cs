using Coinop.Core.Work;
using static Coinop.Core.Workloads.WorkloadEffect;

namespace Coinop.Core.Workloads;

/// <summary>
/// The workload state machine, pure: a workload, an input and the time in; the next workload and the effects out.
/// <para>Provisioning → Live when the first copy heartbeats; Live → Suspect after suspect-after of silence; Suspect →
/// Live when heartbeats return; Suspect (or a copy that never came up) → Evicted after evict-after of silence, both
/// measured from the last heartbeat received. Every silent copy becomes suspect, replicated or not: unlike Paygress'
/// fix #71 (which keeps a non-replicated workload live on lost heartbeats because evicting it cannot help), here
/// suspicion is only a report — eviction of a non-replicated workload still waits for evict-after, and the respawn
/// it leads to (if the restart policy allows) is exactly what the consumer asked for.</para>
/// <para>A lost copy (evicted, reported lost, or crashed) has its epoch revoked first; only once the supervisor
/// confirms the revoke does a warm standby get promoted or a respawn get placed, at the next epoch. Exit 0 completes,
/// a non-zero exit goes to the restart policy, a cancel cancels, and running out of paid time completes the workload
/// with reason <c>lease_expired</c>. Money is not the machine's business: billing settles the time consumed and refunds
/// the rest when the workload reaches any terminal state.</para>
/// </summary>
public static class WorkloadMachine
{
    /// <summary>
    /// How far beyond now a workload's paid time may reach: ten years, what one payment may buy. A top-up past it is
    /// refused, so no run of top-ups (free on a free market) pushes the lease past the last date there is.
    /// </summary>
    public static readonly TimeSpan MaxPaidAhead = TimeSpan.FromDays(3650);

    /// <summary>A new workload whose first copy starts on <paramref name="primary"/> at epoch 1 (the kernel's first claim).</summary>
    public static WorkloadDecision Submit(string id, WorkloadSpec spec, string primary, IReadOnlyList<string> standbys, DateTimeOffset now)
    {
        var errors = spec.Validate();
        if (errors.Count > 0)
        {
            throw new ArgumentException(string.Join("; ", errors), nameof(spec));
        }

        if (standbys.Count != spec.Standbys || standbys.Distinct().Count() != standbys.Count || standbys.Contains(primary))
        {
            throw new ArgumentException($"need {spec.Standbys} distinct standbys other than the primary", nameof(standbys));
        }

        var workload = new Workload(id, spec, WorkloadState.Provisioning, now, null, primary, Epoch: 1, Revoking: null,
            LastContact: now, [.. standbys.Select(s => new WorkloadStandby(s, now))], Attempts: 0, PaidUntil: now + spec.Duration,
            Checkpoint: null, [new WorkloadHistoryEntry(WorkloadState.Provisioning, primary, now)], CreatedAt: now);
        List<WorkloadEffect> effects = [.. standbys.Select(s => new ReserveStandby(s)), new StartCopy(primary, 1, null)];
        return new WorkloadDecision(workload, effects);
    }

    public static WorkloadDecision Apply(Workload workload, WorkloadInput input, WorkloadTimings timings, DateTimeOffset now)
    {
        var step = new Step(workload, timings.EnsureValid(), now);
        step.AdvanceTime();
        var rejection = step.W.IsTerminal && input is not (WorkloadInput.Tick or WorkloadInput.CopyHeartbeat)
            ? "workload is " + Text.WireEnum.Name(step.W.State)
            : input switch
            {
                WorkloadInput.Tick => null,
                WorkloadInput.CopyHeartbeat h => step.CopyHeartbeat(h.Provider, h.Epoch),
                WorkloadInput.StandbyHeartbeat h => step.StandbyHeartbeat(h.Provider),
                WorkloadInput.CopyExited e => step.CopyExited(e.Provider, e.Epoch, e.ExitCode),
                WorkloadInput.CopyLost l => step.CopyLost(l.Provider, l.Epoch, l.Reason),
                WorkloadInput.LeaseRevoked r => step.LeaseRevoked(r.Epoch),
                WorkloadInput.CopyPlaced p => step.CopyPlaced(p.Provider, p.Epoch),
                WorkloadInput.PlacementFailed f => step.PlacementFailed(f.Epoch, f.Reason),
                WorkloadInput.StandbyAdded s => step.StandbyAdded(s.Provider),
                WorkloadInput.CheckpointStored c => step.CheckpointStored(c.Provider, c.Epoch, c.Checkpoint),
                WorkloadInput.TopUp t => step.TopUp(t.Extra),
                WorkloadInput.Cancel c => step.Cancel(c.RequestedBy),
                _ => throw new ArgumentOutOfRangeException(nameof(input), input, "unknown workload input"),
            };
        return rejection is null
            ? new WorkloadDecision(step.W, step.Effects)
            : new WorkloadDecision(step.W, step.Effects, rejection);
    }

    /// <summary>One application of an input: the workload as it evolves and the effects so far.</summary>
    private sealed class Step(Workload workload, WorkloadTimings timings, DateTimeOffset now)
    {
        public Workload W { get; private set; } = workload;

        public List<WorkloadEffect> Effects { get; } = [];

        private bool CopyMayRun => W.Provider is not null && W.Revoking is null;

        public void AdvanceTime()
        {
            if (W.IsTerminal)
            {
                return;
            }

            if (now >= W.PaidUntil)
            {
                Terminate(WorkloadState.Completed, WorkloadReasons.LeaseExpired);
                return;
            }

            if (!CopyMayRun)
            {
                return; // waiting for a revoke to be confirmed or a respawn to be placed
            }

            var silence = now - W.LastContact;
            if (W.State == WorkloadState.Live && silence >= timings.SuspectAfter)
            {
                Enter(WorkloadState.Suspect, W.Provider, $"silent for {silence.TotalSeconds:0.###}s");
            }

            if (W.State != WorkloadState.Live && silence >= timings.EvictAfter)
            {
                LoseCopy(crashed: false, WorkloadState.Evicted, WorkloadReasons.Evicted, $"silent for {silence.TotalSeconds:0.###}s");
            }
        }

        public string? CopyHeartbeat(string provider, long epoch)
        {
            if (!W.AllowedToRun(provider, epoch))
            {
                // A revoked, superseded or finished copy is told to stop, whenever and however often it shows up.
                Effects.Add(new StopCopy(provider, epoch, W.IsTerminal ? Text.WireEnum.Name(W.State) : "not_current"));
                return null;
            }

            W = W with { LastContact = now };
            Effects.Add(new RenewLease(provider, epoch));
            if (W.State != WorkloadState.Live)
            {
                Enter(WorkloadState.Live, provider, null);
            }

            return null;
        }

        public string? StandbyHeartbeat(string provider)
        {
            var index = IndexOfStandby(provider);
            if (index < 0)
            {
                return $"{provider} is not a standby of this workload";
            }

            W = W with { Standbys = Replace(W.Standbys, index, W.Standbys[index] with { LastHeard = now }) };
            return null;
        }

        public string? CopyExited(string provider, long epoch, int exitCode)
        {
            if (!W.AllowedToRun(provider, epoch))
            {
                return "not the current copy";
            }

            if (W.State is WorkloadState.Provisioning or WorkloadState.Respawning)
            {
                // An exit proves the copy ran, even when it finished before its first heartbeat reached the market.
                Enter(WorkloadState.Live, provider, null);
            }

            if (exitCode == 0)
            {
                Terminate(WorkloadState.Completed, WorkloadReasons.Exited, stopCopy: false);
            }
            else
            {
                LoseCopy(crashed: true, WorkloadState.Respawning, WorkloadReasons.Crashed, $"exited with code {exitCode} on {provider}");
            }

            return null;
        }

        public string? CopyLost(string provider, long epoch, string reason)
        {
            if (!W.AllowedToRun(provider, epoch))
            {
                return "not the current copy";
            }

            LoseCopy(crashed: false, WorkloadState.Evicted, WorkloadReasons.Lost, reason);
            return null;
        }

        public string? LeaseRevoked(long epoch)
        {
            if (W.Revoking is not { } lost || lost.Epoch != epoch)
            {
                return $"epoch {epoch} is not being revoked";
            }

            W = W with { Revoking = null, Epoch = epoch + 1 };
            var standby = LiveStandby();
            var canRestart = W.Attempts < W.Spec.Restart.MaxAttempts;
            if (lost.Crashed ? !canRestart : standby is null && !canRestart)
            {
                Terminate(WorkloadState.Failed, WorkloadReasons.RestartsExhausted, stopCopy: false);
                return null;
            }

            if (lost.Crashed || standby is null)
            {
                W = W with { Attempts = W.Attempts + 1 };
            }

            if (standby is not null)
            {
                W = W with { Provider = standby, LastContact = now, Standbys = [.. W.Standbys.Where(s => s.Provider != standby)] };
                Enter(WorkloadState.Respawning, standby, null);
                Effects.Add(new PromoteStandby(standby, W.Epoch, W.Checkpoint));
            }
            else
            {
                W = W with { Provider = null };
                Enter(WorkloadState.Respawning, null, null);
                Effects.Add(new PlaceCopy(W.Epoch, W.Attempts, lost.Provider));
            }

            return null;
        }

        public string? CopyPlaced(string provider, long epoch)
        {
            if (!AwaitingPlacement(epoch))
            {
                return $"no respawn is waiting for a provider at epoch {epoch}";
            }

            W = W with { Provider = provider, LastContact = now };
            Enter(WorkloadState.Respawning, provider, null);
            Effects.Add(new StartCopy(provider, epoch, W.Checkpoint));
            return null;
        }

        public string? PlacementFailed(long epoch, string reason)
        {
            if (!AwaitingPlacement(epoch))
            {
                return $"no respawn is waiting for a provider at epoch {epoch}";
            }

            Terminate(WorkloadState.Failed, $"{WorkloadReasons.NoProvider}: {reason}", stopCopy: false);
            return null;
        }

        public string? StandbyAdded(string provider)
        {
            if (W.Spec.Standbys == 0)
            {
                return "the workload has no warm standbys";
            }

            if (provider == W.Provider || IndexOfStandby(provider) >= 0)
            {
                return $"{provider} already serves this workload";
            }

            W = W with { Standbys = [.. W.Standbys, new WorkloadStandby(provider, now)] };
            Effects.Add(new ReserveStandby(provider));
            return null;
        }

        public string? CheckpointStored(string provider, long epoch, string checkpoint)
        {
            if (!W.Spec.Checkpointed)
            {
                return "the workload is not checkpointed";
            }

            if (!W.AllowedToRun(provider, epoch))
            {
                return "not the current copy";
            }

            W = W with { Checkpoint = checkpoint };
            return null;
        }

        public string? TopUp(TimeSpan extra)
        {
            if (extra <= TimeSpan.Zero)
            {
                return "a top-up must add time";
            }

            if (extra > MaxPaidAhead - (W.PaidUntil - now))
            {
                return $"a workload may be paid for at most {MaxPaidAhead.TotalDays:0} days ahead";
            }

            W = W with { PaidUntil = W.PaidUntil + extra };
            return null;
        }

        public string? Cancel(string requestedBy)
        {
            Terminate(WorkloadState.Cancelled, $"{WorkloadReasons.Cancelled} by {requestedBy}");
            return null;
        }

        /// <summary>
        /// The copy allowed to run is gone or must go. If nothing could replace it the workload fails now; otherwise its
        /// epoch is revoked and the replacement waits for the supervisor to confirm that.
        /// </summary>
        private void LoseCopy(bool crashed, WorkloadState state, string reason, string detail)
        {
            var provider = W.Provider!;
            if (!crashed)
            {
                Effects.Add(new StopCopy(provider, W.Epoch, reason)); // it should be gone already; say so in case it is not
            }

            var canRestart = W.Attempts < W.Spec.Restart.MaxAttempts;
            if (!canRestart && (crashed || LiveStandby() is null))
            {
                Terminate(WorkloadState.Failed, $"{reason}: {detail}", stopCopy: false);
                return;
            }

            Effects.Add(new RevokeLease(W.Epoch));
            W = W with { Revoking = new PendingRevoke(provider, W.Epoch, crashed), Provider = null };
            Enter(state, crashed ? null : provider, $"{reason}: {detail}");
        }

        private void Terminate(WorkloadState state, string reason, bool stopCopy = true)
        {
            if (stopCopy && CopyMayRun)
            {
                Effects.Add(new StopCopy(W.Provider!, W.Epoch, reason));
            }

            var kind = state switch
            {
                WorkloadState.Completed => WorkTerminalKind.Completed,
                WorkloadState.Cancelled => WorkTerminalKind.Cancelled,
                _ => WorkTerminalKind.Failed,
            };
            Effects.Add(new FinishWork(kind, reason));
            Effects.AddRange(W.Standbys.Select(s => new ReleaseStandby(s.Provider)));

            W = W with { Standbys = [], Revoking = null };
            Enter(state, W.Provider, reason);
        }

        private void Enter(WorkloadState state, string? provider, string? reason)
        {
            var last = W.History[^1];
            var history = last.State == state && last.Provider == provider
                ? W.History
                : [.. W.History, new WorkloadHistoryEntry(state, provider, now)];
            W = W with { State = state, Since = W.State == state ? W.Since : now, Reason = reason, History = history };
        }

        private bool AwaitingPlacement(long epoch) =>
            W.State == WorkloadState.Respawning && W.Revoking is null && W.Provider is null && W.Epoch == epoch;

        /// <summary>The standby heard from most recently, if it was heard within suspect-after.</summary>
        private string? LiveStandby() => W.Standbys
            .Where(s => now - s.LastHeard < timings.SuspectAfter)
            .OrderByDescending(s => s.LastHeard)
            .Select(s => s.Provider)
            .FirstOrDefault();

        private int IndexOfStandby(string provider)
        {
            for (var i = 0; i < W.Standbys.Count; i++)
            {
                if (W.Standbys[i].Provider == provider)
                {
                    return i;
                }
            }

            return -1;
        }

        private static IReadOnlyList<T> Replace<T>(IReadOnlyList<T> list, int index, T value)
        {
            var copy = list.ToArray();
            copy[index] = value;
            return copy;
        }
    }
}
