using System.Diagnostics.CodeAnalysis;
using Coinop.Core.Protocol;
using Coinop.Core.Workloads;

namespace Coinop.Provider.Workloads;

/// <summary>
/// The agent's reports to the market (exits, losses, usage records, receipts) and the link they go out on: the shell
/// around <see cref="ReportOutbox{TReport}"/>, which decides what is sent on which link and when a report is proven
/// delivered (a heartbeat sent after it on the same link was acknowledged). It also numbers heartbeats, since that
/// proof compares a report's send with the heartbeats around it.
/// </summary>
internal sealed class WorkloadReports
{
    private readonly Lock _gate = new();
    private readonly ReportOutbox<ProtocolMessage> _outbox = new();
    private readonly List<(long UpTo, TaskCompletionSource Done)> _flushWaiters = [];
    private TaskCompletionSource _linkChanged = NewSignal();
    private TaskCompletionSource _reportAdded = NewSignal();
    private IWorkloadLink? _link;
    private long _seq;

    /// <summary>The link reports and output go out on, if a session is up.</summary>
    public IWorkloadLink? Link
    {
        get
        {
            lock (_gate)
            {
                return _link;
            }
        }
    }

    public void Attach(IWorkloadLink link)
    {
        lock (_gate)
        {
            _link = link;
            _outbox.Attach(link); // reports a previous link took but never proved delivered go again first
            Fire(ref _linkChanged);
        }
    }

    public void Detach(IWorkloadLink link)
    {
        lock (_gate)
        {
            if (ReferenceEquals(_link, link))
            {
                _link = null;
            }

            _outbox.Detach(link);
        }
    }

    /// <summary>Frames on one link arrive in order: an answered heartbeat proves every report sent before it on <paramref name="from"/> arrived.</summary>
    public void Acknowledged(IWorkloadLink from, long seq)
    {
        lock (_gate)
        {
            _outbox.Acknowledged(from, seq);
        }
    }

    public void Add(ProtocolMessage report)
    {
        lock (_gate)
        {
            _outbox.Add(report);
            Fire(ref _reportAdded);
        }
    }

    /// <summary>
    /// Numbers the next heartbeat and names the link it goes on, or says there is none to send: no link, or nothing
    /// asks for one (<paramref name="wanted"/> false and no report waits for the acknowledgement that proves it delivered).
    /// </summary>
    public bool TryNextHeartbeat(bool wanted, [NotNullWhen(true)] out IWorkloadLink? link, out long seq)
    {
        lock (_gate)
        {
            link = _link;
            seq = 0;
            if (link is null || (!wanted && _outbox.Unconfirmed == 0))
            {
                return false;
            }

            seq = ++_seq;
            return true;
        }
    }

    /// <summary>Completes once every report added so far went out on a link.</summary>
    public Task SentAsync()
    {
        var sent = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            _flushWaiters.Add((_outbox.LastAdded, sent));
            CompleteFlushWaiters();
        }

        return sent.Task;
    }

    /// <summary>Sends what the outbox says, on the link it says; waits for a new report or a new link when there is nothing to send.</summary>
    public async Task SendLoopAsync(CancellationToken ct)
    {
        try
        {
            while (true)
            {
                (ProtocolMessage Report, object Link)? next;
                Task linkChanged, added;
                lock (_gate)
                {
                    next = _outbox.Next();
                    linkChanged = _linkChanged.Task;
                    added = _reportAdded.Task;
                }

                if (next is not { } send)
                {
                    await Task.WhenAny(linkChanged, added).WaitAsync(ct);
                    continue;
                }

                if (await ((IWorkloadLink)send.Link).SendAsync(send.Report, ct))
                {
                    lock (_gate)
                    {
                        _outbox.Sent(send.Report, send.Link, _seq + 1);
                        CompleteFlushWaiters();
                    }

                    continue;
                }

                await linkChanged.WaitAsync(ct); // wait for the next session
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    /// <summary>Under the gate: waiters are told once the reports they wait for went out.</summary>
    private void CompleteFlushWaiters()
    {
        _flushWaiters.RemoveAll(w =>
        {
            if (!_outbox.Flushed(w.UpTo))
            {
                return false;
            }

            w.Done.TrySetResult();
            return true;
        });
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes the signal and arms a new one (under the gate).</summary>
    private static void Fire(ref TaskCompletionSource signal)
    {
        signal.TrySetResult();
        signal = NewSignal();
    }
}
