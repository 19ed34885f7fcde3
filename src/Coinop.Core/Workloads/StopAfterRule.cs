using Coinop.Core.Protocol;

namespace Coinop.Core.Workloads;

/// <summary>
/// The provider's half of the single-writer rule (docs/durability.md), sans I/O: which copies run here, when the
/// heartbeat behind each copy's latest acknowledgement was sent, and why a copy is being stopped. Time is a monotonic
/// reading passed in (the shell's <c>TimeProvider.GetElapsedTime</c> since some origin); decisions come out:
/// <list type="bullet">
/// <item>a copy is due to stop once <c>stop_after</c> passed since the <b>send</b> of the last heartbeat the market
/// acknowledged for it (never since the ack's arrival), or since its start arrived when nothing was acknowledged yet;</item>
/// <item>a copy being stopped is left out of heartbeats and never restarted here; only a new start at a higher epoch runs anything;</item>
/// <item>when a copy's process ends, what the market must hear is decided by why it ended: its own exit, nothing (the
/// market stopped it), or a loss with the reason the provider stopped it for.</item>
/// </list>
/// Not thread-safe: the shell calls it under one lock.
/// </summary>
public sealed class StopAfterRule
{
    /// <summary>The stop reason of a copy the market told to stop: it needs no report.</summary>
    public const string StoppedByMarket = "stopped_by_market";

    private readonly Dictionary<string, Copy> _copies = new(StringComparer.Ordinal);
    private readonly Dictionary<long, TimeSpan> _heartbeatSentAt = [];

    /// <summary>How many copies are here (running, starting or being stopped).</summary>
    public int Count => _copies.Count;

    /// <summary>Every copy here with its epoch and, when it is being stopped, why.</summary>
    public IEnumerable<(string WorkloadId, long Epoch, string? StopReason)> Copies => _copies.Select(c => (c.Key, c.Value.Epoch, c.Value.StopReason));

    /// <summary>
    /// A start at <paramref name="epoch"/> arrived at <paramref name="now"/>: from now on the copy is watched (a start that
    /// hangs is stopped by the rule as well). Null when accepted; otherwise why not (this epoch or a later one is here).
    /// </summary>
    public string? Start(string workloadId, long epoch, TimeSpan stopAfter, TimeSpan now)
    {
        if (stopAfter <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(stopAfter), stopAfter, "stop-after must be positive");
        }

        if (_copies.TryGetValue(workloadId, out var older) && older.Epoch >= epoch)
        {
            return $"epoch {older.Epoch} is already here";
        }

        _copies[workloadId] = new Copy(epoch, now, stopAfter);
        return null;
    }

    /// <summary>The start of <paramref name="epoch"/> failed: the copy is forgotten (its loss is reported by the shell).</summary>
    public void StartFailed(string workloadId, long epoch)
    {
        if (_copies.TryGetValue(workloadId, out var copy) && copy.Epoch == epoch)
        {
            _copies.Remove(workloadId);
        }
    }

    /// <summary>The market said stop every copy of the workload up to <paramref name="epoch"/>. True when a copy here is affected.</summary>
    public bool StopByMarket(string workloadId, long epoch)
    {
        if (_copies.TryGetValue(workloadId, out var copy) && copy.Epoch <= epoch)
        {
            copy.StopReason ??= StoppedByMarket;
            return true;
        }

        return false;
    }

    /// <summary>The provider stops every copy for <paramref name="reason"/> (a drain); returns them.</summary>
    public List<CopyRef> StopAll(string reason)
    {
        foreach (var copy in _copies.Values)
        {
            copy.StopReason ??= reason;
        }

        return [.. _copies.Select(c => new CopyRef(c.Key, c.Value.Epoch))];
    }

    /// <summary>A heartbeat numbered <paramref name="seq"/> is sent at <paramref name="now"/>: the copies it names (those not being stopped).</summary>
    public List<CopyRef> Heartbeat(long seq, TimeSpan now)
    {
        _heartbeatSentAt[seq] = now;
        return [.. _copies.Where(c => c.Value.StopReason is null).Select(c => new CopyRef(c.Key, c.Value.Epoch))];
    }

    /// <summary>
    /// The market answered heartbeat <paramref name="seq"/>, renewing <paramref name="renewed"/>: those copies measure
    /// their deadline from that heartbeat's send. An answer to an unknown or older heartbeat changes nothing.
    /// </summary>
    public void Acknowledged(long seq, IEnumerable<CopyRef?>? renewed)
    {
        if (!_heartbeatSentAt.Remove(seq, out var sentAt))
        {
            return;
        }

        foreach (var older in _heartbeatSentAt.Keys.Where(s => s < seq).ToList())
        {
            _heartbeatSentAt.Remove(older);
        }

        foreach (var r in renewed ?? [])
        {
            if (r is not null && _copies.TryGetValue(r.WorkloadId, out var copy) && copy.Epoch == r.Epoch && sentAt > copy.LastAckedSend)
            {
                copy.LastAckedSend = sentAt;
            }
        }
    }

    /// <summary>The copies whose stop deadline passed at <paramref name="now"/>: each is marked stopped by the rule and returned once.</summary>
    public List<DueCopy> Due(TimeSpan now)
    {
        List<DueCopy> due = [];
        foreach (var (id, copy) in _copies)
        {
            var silent = now - copy.LastAckedSend;
            if (copy.StopReason is null && silent >= copy.StopAfter)
            {
                copy.StopReason = WorkloadLost.StoppedByRule;
                due.Add(new DueCopy(id, copy.Epoch, silent));
            }
        }

        return due;
    }

    /// <summary>When the earliest running copy becomes due (null: none is watched).</summary>
    public TimeSpan? NextDeadline() =>
        _copies.Values.Where(c => c.StopReason is null).Select(c => (TimeSpan?)(c.LastAckedSend + c.StopAfter)).Min();

    /// <summary>
    /// The process of <paramref name="workloadId"/> at <paramref name="epoch"/> ended: the copy is forgotten, and what the
    /// market must hear is returned. Null when this is not the copy here (an older one a newer start replaced: the market moved on).
    /// </summary>
    public CopyEnd? Ended(string workloadId, long epoch)
    {
        if (!_copies.TryGetValue(workloadId, out var copy) || copy.Epoch != epoch)
        {
            return null;
        }

        _copies.Remove(workloadId);
        return copy.StopReason switch
        {
            null => new CopyEnd(CopyEndReport.Exited, null),
            StoppedByMarket => new CopyEnd(CopyEndReport.None, StoppedByMarket),
            var reason => new CopyEnd(CopyEndReport.Lost, reason),
        };
    }

    private sealed class Copy(long epoch, TimeSpan startedAt, TimeSpan stopAfter)
    {
        public long Epoch { get; } = epoch;

        /// <summary>When the heartbeat behind the latest acknowledgement was sent; the start's arrival until then.</summary>
        public TimeSpan LastAckedSend { get; set; } = startedAt;

        public TimeSpan StopAfter { get; } = stopAfter;

        public string? StopReason { get; set; }
    }
}

/// <summary>A copy the rule stopped: it was silent for <see cref="Silent"/>.</summary>
public readonly record struct DueCopy(string WorkloadId, long Epoch, TimeSpan Silent);

/// <summary>What the market hears about a copy that ended.</summary>
public enum CopyEndReport
{
    /// <summary>Its own exit (<c>workload_exited</c>).</summary>
    Exited,

    /// <summary>Nothing: the market stopped it.</summary>
    None,

    /// <summary>A loss (<c>workload_lost</c>) with the reason the provider stopped it for.</summary>
    Lost,
}

/// <summary>How a copy ended: what to report, and the stop reason (for <see cref="CopyEndReport.Lost"/>, the loss's reason).</summary>
public readonly record struct CopyEnd(CopyEndReport Report, string? Reason);
