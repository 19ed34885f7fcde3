namespace Coinop.Core.Workloads;

/// <summary>
/// The provider's at-least-once delivery of reports to the market (exits, losses, usage records, receipts), sans I/O.
/// Reports go out in the order they were added. A report a link took counts as delivered only once the market answered
/// a heartbeat sent after it on that same link (frames on one link arrive in order, so that answer proves the report
/// arrived); until then it is kept, and when another link is attached it goes out again first, in its place. The market
/// ignores repeats. Links are compared by reference. Not thread-safe: the shell calls it under one lock.
/// </summary>
public sealed class ReportOutbox<TReport>
    where TReport : class
{
    private readonly LinkedList<Entry> _pending = new();
    private readonly List<(object Link, long ConfirmedBySeq, Entry Entry)> _unconfirmed = [];
    private object? _link;
    private long _added;

    /// <summary>Reports not yet taken by the attached link.</summary>
    public int Pending => _pending.Count;

    /// <summary>Reports a link took that no answered heartbeat has proven delivered yet.</summary>
    public int Unconfirmed => _unconfirmed.Count;

    /// <summary>Every report still held: pending, then unconfirmed.</summary>
    public IEnumerable<TReport> Held => _pending.Select(e => e.Report).Concat(_unconfirmed.Select(u => u.Entry.Report));

    /// <summary>The number the last added report got (see <see cref="Flushed"/>).</summary>
    public long LastAdded => _added;

    public void Add(TReport report) => _pending.AddLast(new Entry(++_added, report));

    /// <summary>A new link is up: every report an earlier link took but never proved delivered goes again first, in order.</summary>
    public void Attach(object link)
    {
        _link = link;
        var first = _pending.First;
        foreach (var (_, _, entry) in _unconfirmed.OrderBy(u => u.Entry.Number))
        {
            if (first is null)
            {
                _pending.AddLast(entry);
            }
            else
            {
                _pending.AddBefore(first, entry);
            }
        }

        _unconfirmed.Clear();
    }

    /// <summary>The link went away (its unconfirmed reports wait for the next one).</summary>
    public void Detach(object link)
    {
        if (ReferenceEquals(_link, link))
        {
            _link = null;
        }
    }

    /// <summary>The next report to send and the link to send it on; null when there is nothing to send or no link.</summary>
    public (TReport Report, object Link)? Next() => _link is { } link && _pending.First is { } first ? (first.Value.Report, link) : null;

    /// <summary>
    /// <paramref name="link"/> took <paramref name="report"/> (the one <see cref="Next"/> gave); it is proven delivered by
    /// the answer to heartbeat <paramref name="nextHeartbeatSeq"/> (the next one sent) or a later one on that link. A report
    /// taken by a link that was replaced meanwhile stays pending for the new link.
    /// </summary>
    public void Sent(TReport report, object link, long nextHeartbeatSeq)
    {
        if (!ReferenceEquals(link, _link) || _pending.First is not { } first || !ReferenceEquals(first.Value.Report, report))
        {
            return;
        }

        _pending.RemoveFirst();
        first.Value.Taken = true;
        _unconfirmed.Add((link, nextHeartbeatSeq, first.Value));
    }

    /// <summary>The market answered heartbeat <paramref name="seq"/> on <paramref name="link"/>: reports that link took before it are delivered.</summary>
    public void Acknowledged(object link, long seq) =>
        _unconfirmed.RemoveAll(u => ReferenceEquals(u.Link, link) && u.ConfirmedBySeq <= seq);

    /// <summary>True when every report numbered up to <paramref name="upTo"/> was taken by a link at least once (a drain waits for this).</summary>
    public bool Flushed(long upTo) => !_pending.Any(e => e.Number <= upTo && !e.Taken);

    private sealed class Entry(long number, TReport report)
    {
        public long Number { get; } = number;

        public TReport Report { get; } = report;

        public bool Taken { get; set; }
    }
}
