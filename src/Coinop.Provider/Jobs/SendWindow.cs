namespace Coinop.Provider.Jobs;

/// <summary>
/// A job's flow-control credit: the bytes the provider may still send before the market grants more. The job
/// reads its backend only while credit is left, so a slow consumer stalls the backend read instead of growing
/// a buffer here.
/// </summary>
public sealed class SendWindow(long initial)
{
    private readonly Lock _gate = new();
    private long _available = Math.Max(0, initial);
    private TaskCompletionSource? _waiter;

    public long Available
    {
        get
        {
            lock (_gate)
            {
                return _available;
            }
        }
    }

    public void Grant(long bytes)
    {
        if (bytes <= 0)
        {
            return;
        }

        TaskCompletionSource? wake;
        lock (_gate)
        {
            _available = _available > long.MaxValue - bytes ? long.MaxValue : _available + bytes;
            wake = _waiter;
            _waiter = null;
        }

        wake?.TrySetResult();
    }

    /// <summary>Waits until some credit is available and returns it (at most <paramref name="max"/>).</summary>
    public async ValueTask<int> WaitAsync(int max, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task wait;
            lock (_gate)
            {
                if (_available > 0)
                {
                    return (int)Math.Min(_available, max);
                }

                _waiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                wait = _waiter.Task;
            }

            await wait.WaitAsync(cancellationToken);
        }
    }

    public void Consume(int bytes)
    {
        lock (_gate)
        {
            _available -= bytes;
        }
    }
}
