using System.Threading.Channels;

namespace Coinop.Runtime.Links;

/// <summary>
/// The send side of one link (a WebSocket between a provider and the market): frames leave one at a time, in the
/// order they were handed over. A caller that finds nothing queued and nobody sending sends its frame itself;
/// otherwise the frame waits in a bounded queue that <see cref="RunAsync"/> drains. Sending in the caller saves the
/// hand-over to the writer loop — a thread wake-up per frame, a large part of what relaying a request costs. Close
/// frames always go through the queue; nothing goes out after one, nor after a failed send. With an
/// <see cref="IWriteHolding"/> transport, frames sent together (<see cref="SendAsync(OutgoingFrame, OutgoingFrame, CancellationToken)"/>)
/// or found queued together by the writer loop leave in one write; a frame is never held back to wait for another.
/// </summary>
public sealed class FrameWriter
{
    /// <summary>The most frames the writer loop gathers into one write.</summary>
    private const int MaxGathered = 64;

    private readonly Func<OutgoingFrame, ValueTask> _send;
    private readonly Action _failed;
    private readonly IWriteHolding? _holding;
    private readonly Channel<OutgoingFrame> _queue;
    private readonly Lock _turnGate = new();
    private bool _turnTaken;
    private TaskCompletionSource? _writerWaiting;
    private int _pending;
    private int _broken;
    private volatile bool _closing;

    /// <param name="send">Sends one frame on the socket (a close frame closes its output).</param>
    /// <param name="failed">Called once when a send failed: the link is broken (typically: abort the socket).</param>
    /// <param name="holding">The transport under <paramref name="send"/>, when it can gather several frames into one write.</param>
    public FrameWriter(int capacity, Func<OutgoingFrame, ValueTask> send, Action failed, IWriteHolding? holding = null)
    {
        _send = send;
        _failed = failed;
        _holding = holding;
        _queue = Channel.CreateBounded<OutgoingFrame>(new BoundedChannelOptions(capacity) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
    }

    /// <summary>Frames waiting in the queue.</summary>
    public int Queued => _queue.Reader.Count;

    /// <summary>Sends or queues <paramref name="frame"/>, waiting for room in the queue; false (frame released) when the link is closing.</summary>
    public async ValueTask<bool> SendAsync(OutgoingFrame frame, CancellationToken cancellationToken = default)
    {
        if (TryTakeTurn(frame))
        {
            return await SendInTurnAsync(frame);
        }

        Interlocked.Increment(ref _pending);
        try
        {
            await _queue.Writer.WriteAsync(frame, cancellationToken);
            AfterQueued(frame);
            return true;
        }
        catch (Exception ex) when (ex is ChannelClosedException or OperationCanceledException)
        {
            Interlocked.Decrement(ref _pending);
            frame.Release();
            return false;
        }
    }

    /// <summary>
    /// Sends or queues two frames in order; when the link is idle they go out back to back, in one write if its
    /// transport can hold writes. False (both released) when the link is closing; false after <paramref name="first"/>
    /// went out when <paramref name="then"/> could not.
    /// </summary>
    public async ValueTask<bool> SendAsync(OutgoingFrame first, OutgoingFrame then, CancellationToken cancellationToken = default)
    {
        if (then.CloseStatus is null && TryTakeTurn(first))
        {
            return await SendInTurnAsync(first, then);
        }

        if (!await SendAsync(first, cancellationToken))
        {
            then.Release();
            return false;
        }

        return await SendAsync(then, cancellationToken);
    }

    /// <summary>Sends or queues <paramref name="frame"/> without waiting; false (frame released) when the queue is full or the link closing.</summary>
    public bool TrySend(OutgoingFrame frame)
    {
        if (TryTakeTurn(frame))
        {
            var sending = SendInTurnAsync(frame);
            if (!sending.IsCompleted)
            {
                _ = sending.AsTask(); // finishes (and gives the turn back) on its own
            }

            return true;
        }

        Interlocked.Increment(ref _pending);
        if (_queue.Writer.TryWrite(frame))
        {
            AfterQueued(frame);
            return true;
        }

        Interlocked.Decrement(ref _pending);
        frame.Release();
        return false;
    }

    /// <summary>No frames after those already handed over (without a close frame).</summary>
    public void Complete()
    {
        _closing = true;
        _queue.Writer.TryComplete();
    }

    /// <summary>Sends queued frames until a close frame went out, <see cref="Complete"/> was called and the queue drained, or a send failed.</summary>
    public async Task RunAsync()
    {
        try
        {
            await foreach (var frame in _queue.Reader.ReadAllAsync())
            {
                await TakeTurnAsync();
                var more = true;
                try
                {
                    // Frames already waiting behind this one go out with it, in one write when the transport can hold.
                    var gather = _holding is not null && _queue.Reader.Count > 0;
                    if (gather)
                    {
                        _holding!.Hold();
                    }

                    more = await SendQueuedAsync(frame);
                    for (var gathered = 1; gather && more && gathered < MaxGathered && _queue.Reader.TryRead(out var next); gathered++)
                    {
                        more = await SendQueuedAsync(next);
                    }

                    if (gather)
                    {
                        await _holding!.WriteHeldAsync();
                    }
                }
                catch (Exception)
                {
                    Fail();
                    more = false;
                }
                finally
                {
                    ReleaseTurn();
                }

                if (!more)
                {
                    break;
                }
            }
        }
        finally
        {
            Complete();
            while (_queue.Reader.TryRead(out var left))
            {
                left.Release();
            }
        }
    }

    /// <summary>Sends one frame taken from the queue; false after a close frame.</summary>
    private async ValueTask<bool> SendQueuedAsync(OutgoingFrame frame)
    {
        try
        {
            await _send(frame);
        }
        finally
        {
            frame.Release();
            Interlocked.Decrement(ref _pending);
        }

        return frame.CloseStatus is null;
    }

    /// <summary>The caller may send now: not a close, nothing queued or in the writer's hands, nobody sending, not closing.</summary>
    private bool TryTakeTurn(OutgoingFrame frame)
    {
        if (frame.CloseStatus is not null || _closing || Volatile.Read(ref _pending) != 0)
        {
            return false;
        }

        lock (_turnGate)
        {
            // Checked again in turn: a frame queued meanwhile must leave first.
            if (_turnTaken || Volatile.Read(ref _pending) != 0 || _closing)
            {
                return false;
            }

            _turnTaken = true;
            return true;
        }
    }

    /// <summary>The writer loop's turn: at once when free, else when the caller sending now is done.</summary>
    private Task TakeTurnAsync()
    {
        lock (_turnGate)
        {
            if (!_turnTaken)
            {
                _turnTaken = true;
                return Task.CompletedTask;
            }

            _writerWaiting = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return _writerWaiting.Task;
        }
    }

    /// <summary>Gives the turn back, straight to the writer loop when it is waiting for it.</summary>
    private void ReleaseTurn()
    {
        TaskCompletionSource? waiting;
        lock (_turnGate)
        {
            waiting = _writerWaiting;
            _writerWaiting = null;
            _turnTaken = waiting is not null;
        }

        waiting?.TrySetResult();
    }

    private async ValueTask<bool> SendInTurnAsync(OutgoingFrame first, OutgoingFrame then)
    {
        try
        {
            _holding?.Hold();
            await _send(first);
            await _send(then);
            if (_holding is not null)
            {
                await _holding.WriteHeldAsync();
            }

            return true;
        }
        catch (Exception)
        {
            Fail();
            return false;
        }
        finally
        {
            first.Release();
            then.Release();

            ReleaseTurn();
        }
    }

    private async ValueTask<bool> SendInTurnAsync(OutgoingFrame frame)
    {
        try
        {
            await _send(frame);
            return true;
        }
        catch (Exception)
        {
            Fail();
            return false;
        }
        finally
        {
            frame.Release();
            ReleaseTurn();
        }
    }

    private void AfterQueued(OutgoingFrame frame)
    {
        if (frame.CloseStatus is not null)
        {
            Complete();
        }
    }

    private void Fail()
    {
        Complete();
        if (Interlocked.Exchange(ref _broken, 1) == 0)
        {
            _failed();
        }
    }
}
