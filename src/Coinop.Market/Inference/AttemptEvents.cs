using System.Buffers;
using System.Threading.Tasks.Sources;

namespace Coinop.Market.Inference;

/// <summary>
/// The events of one attempt, in order, for its one reader (the request). Writers (the session's reader loop, a lost
/// link) never block. A reader that waits is handed the next event on the writer's thread, straight from the frame, as
/// a channel with synchronous continuations would; nothing is queued while the reader waits. Made per attempt, so it
/// allocates a queue only when events arrive faster than the reader takes them (a channel made a 32-slot segment, a
/// completion source and two reader objects per attempt, and a new operation per cancellable wait).
/// </summary>
public sealed class AttemptEvents : IValueTaskSource<AttemptEvent>
{
    private readonly Lock _lock = new();
    private Queue<AttemptEvent>? _queued;
    private ManualResetValueTaskSourceCore<AttemptEvent> _wait; // continuations run on the completing thread
    private bool _waiting;
    private CancellationToken _waitToken;
    private CancellationTokenRegistration _waitRegistration;
    private bool _closed;

    /// <summary>False when the events are closed (the attempt ended): the caller keeps what it wrote.</summary>
    public bool TryWrite(AttemptEvent e)
    {
        CancellationTokenRegistration registration;
        lock (_lock)
        {
            if (_closed)
            {
                return false;
            }

            if (!_waiting)
            {
                (_queued ??= new Queue<AttemptEvent>(2)).Enqueue(e);
                return true;
            }

            _waiting = false;
            registration = _waitRegistration;
            _waitRegistration = default;
        }

        registration.Unregister();
        _wait.SetResult(e);
        return true;
    }

    /// <summary>
    /// The next event; waits for it until <paramref name="cancellationToken"/> fires (then throws
    /// <see cref="OperationCanceledException"/>, and the next event stays for a later read). One read at a time.
    /// </summary>
    public ValueTask<AttemptEvent> ReadAsync(CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<AttemptEvent>(cancellationToken);
        }

        short version;
        lock (_lock)
        {
            if (_queued is { Count: > 0 })
            {
                return ValueTask.FromResult(_queued.Dequeue());
            }

            ObjectDisposedException.ThrowIf(_closed, this);
            if (_waiting)
            {
                throw new InvalidOperationException("an attempt's events have one reader, reading one at a time");
            }

            _wait.Reset();
            _waiting = true;
            _waitToken = cancellationToken;
            version = _wait.Version;
        }

        if (cancellationToken.CanBeCanceled)
        {
            // Outside the lock: a token that fires meanwhile runs the callback here, at once.
            var registration = cancellationToken.UnsafeRegister(static (state, token) => ((AttemptEvents)state!).Cancel(token), this);
            lock (_lock)
            {
                if (_waiting && _wait.Version == version)
                {
                    _waitRegistration = registration;
                    registration = default;
                }
            }

            registration.Unregister(); // the wait ended before the registration was kept
        }

        return new ValueTask<AttemptEvent>(this, version);
    }

    private void Cancel(CancellationToken token)
    {
        lock (_lock)
        {
            if (!_waiting || _waitToken != token)
            {
                return;
            }

            _waiting = false;
            _waitRegistration = default;
        }

        _wait.SetException(new OperationCanceledException(token));
    }

    /// <summary>Closes the events: later writes are refused, and the pooled buffers of events nobody read are returned.</summary>
    public void Close()
    {
        bool wasWaiting;
        CancellationTokenRegistration registration;
        lock (_lock)
        {
            if (_closed)
            {
                return;
            }

            _closed = true;
            wasWaiting = _waiting;
            _waiting = false;
            registration = _waitRegistration;
            _waitRegistration = default;
            while (_queued is not null && _queued.TryDequeue(out var e))
            {
                if (e.Buffer is not null)
                {
                    ArrayPool<byte>.Shared.Return(e.Buffer);
                }
            }
        }

        registration.Unregister();
        if (wasWaiting)
        {
            _wait.SetException(new ObjectDisposedException(nameof(AttemptEvents)));
        }
    }

    AttemptEvent IValueTaskSource<AttemptEvent>.GetResult(short token) => _wait.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<AttemptEvent>.GetStatus(short token) => _wait.GetStatus(token);

    void IValueTaskSource<AttemptEvent>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _wait.OnCompleted(continuation, state, token, flags);
}
