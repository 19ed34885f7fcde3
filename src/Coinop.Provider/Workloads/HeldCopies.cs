using Coinop.Core.Protocol;
using Coinop.Core.Workloads;

namespace Coinop.Provider.Workloads;

/// <summary>
/// The copies and standby reservations this provider holds, under one lock: the <see cref="StopAfterRule"/> on the
/// agent's monotonic clock (time since it was created), each copy's <see cref="CopyResources"/>, the standbys, and the
/// signal that asks for a heartbeat at once.
/// </summary>
internal sealed class HeldCopies(TimeProvider time)
{
    private readonly long _origin = time.GetTimestamp();
    private readonly Lock _gate = new();
    private readonly StopAfterRule _rule = new();
    private readonly Dictionary<string, CopyResources> _resources = new(StringComparer.Ordinal);
    private readonly HashSet<string> _standbys = new(StringComparer.Ordinal);
    private TaskCompletionSource _heartbeatNow = NewSignal();

    /// <summary>Completes when a heartbeat is wanted before the interval is up.</summary>
    public Task HeartbeatRequested
    {
        get
        {
            lock (_gate)
            {
                return _heartbeatNow.Task;
            }
        }
    }

    /// <summary>Asks for a heartbeat at once (a link came up: report what runs here).</summary>
    public void RequestHeartbeat()
    {
        lock (_gate)
        {
            _heartbeatNow.TrySetResult();
        }
    }

    /// <summary>Whether a heartbeat is due now: one was requested (the request is taken), or copies or standbys are held.</summary>
    public bool TakeHeartbeatWanted()
    {
        lock (_gate)
        {
            var forced = _heartbeatNow.Task.IsCompleted;
            if (forced)
            {
                _heartbeatNow = NewSignal();
            }

            return forced || _rule.Count > 0 || _standbys.Count > 0;
        }
    }

    /// <summary>The heartbeat numbered <paramref name="seq"/>: every copy held and every standby.</summary>
    public WorkloadHeartbeat Heartbeat(long seq, string incarnation)
    {
        lock (_gate)
        {
            return new WorkloadHeartbeat(seq, incarnation, _rule.Heartbeat(seq, Now()), [.. _standbys]);
        }
    }

    public void Acknowledged(long seq, IEnumerable<CopyRef?>? renewed)
    {
        lock (_gate)
        {
            _rule.Acknowledged(seq, renewed);
        }
    }

    /// <summary>Starts watching a copy; the rule's refusal when it may not start.</summary>
    public string? TryStart(string workloadId, long epoch, TimeSpan stopAfter, CopyResources copy)
    {
        lock (_gate)
        {
            if (_rule.Start(workloadId, epoch, stopAfter, Now()) is { } refusal)
            {
                return refusal;
            }

            _resources[workloadId] = copy; // watched from now on: a start that hangs is stopped by the rule as well
            _standbys.Remove(workloadId);
            return null;
        }
    }

    /// <summary>The sandbox did not start <paramref name="copy"/>: forget it (unless a newer start replaced it).</summary>
    public void StartFailed(string workloadId, long epoch, CopyResources copy)
    {
        lock (_gate)
        {
            _rule.StartFailed(workloadId, epoch);
            if (_resources.TryGetValue(workloadId, out var current) && current == copy)
            {
                _resources.Remove(workloadId);
            }
        }
    }

    /// <summary>The market stopped the copy (or the standby) of <paramref name="workloadId"/>.</summary>
    public void StopByMarket(string workloadId, long epoch)
    {
        lock (_gate)
        {
            _rule.StopByMarket(workloadId, epoch);
            _standbys.Remove(workloadId);
        }
    }

    /// <summary>
    /// Stops every copy with <paramref name="reason"/> and gives up every standby: the copies to stop, the signals
    /// that complete once each one's end is reported, and the standbys to release.
    /// </summary>
    public (List<CopyRef> Copies, List<Task> Reported, List<string> Standbys) StopAll(string reason)
    {
        lock (_gate)
        {
            var copies = _rule.StopAll(reason);
            List<Task> reported = [.. copies.Select(c => _resources.TryGetValue(c.WorkloadId, out var r) ? r.Reported.Task : Task.CompletedTask)];
            List<string> standbys = [.. _standbys];
            _standbys.Clear();
            return (copies, reported, standbys);
        }
    }

    public void AddStandby(string workloadId)
    {
        lock (_gate)
        {
            _standbys.Add(workloadId);
        }
    }

    public void RemoveStandby(string workloadId)
    {
        lock (_gate)
        {
            _standbys.Remove(workloadId);
        }
    }

    /// <summary>How long until the first running copy's stop deadline (negative once passed); null when none runs.</summary>
    public TimeSpan? UntilFirstStop()
    {
        lock (_gate)
        {
            return _rule.NextDeadline() - Now();
        }
    }

    /// <summary>The copies whose stop deadline passed.</summary>
    public List<DueCopy> Due()
    {
        lock (_gate)
        {
            return _rule.Due(Now());
        }
    }

    /// <summary>A copy's process ended: what the rule says the market hears (null for an older, replaced copy) and the copy's resources.</summary>
    public (CopyEnd? End, CopyResources? Copy) Ended(string workloadId, long epoch)
    {
        lock (_gate)
        {
            var end = _rule.Ended(workloadId, epoch);
            return end is not null && _resources.Remove(workloadId, out var removed) ? (end, removed) : (end, null);
        }
    }

    /// <summary>The monotonic clock the rule reads: time since this agent was created.</summary>
    private TimeSpan Now() => time.GetElapsedTime(_origin);

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
