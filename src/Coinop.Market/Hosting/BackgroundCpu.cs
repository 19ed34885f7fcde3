using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace Coinop.Market.Hosting;

/// <summary>
/// One dedicated thread for CPU-heavy work nobody is waiting on (making change ahead of time), run at the lowest
/// scheduling priority (Linux nice 19): whenever a request needs a core, the kernel gives it that core first. On a
/// small machine, background elliptic-curve work on the thread pool otherwise lands on the tail of the very request
/// that triggered it.
/// </summary>
public sealed partial class BackgroundCpu : IDisposable
{
    private readonly BlockingCollection<Action> _work = [];

    public BackgroundCpu()
    {
        new Thread(Run) { IsBackground = true, Name = "coinop background cpu" }.Start();
    }

    /// <summary>Runs <paramref name="work"/> on the background thread; the continuation runs on the thread pool.</summary>
    public Task<T> RunAsync<T>(Func<T> work, CancellationToken cancellationToken)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        var registration = cancellationToken.Register(() => done.TrySetCanceled(cancellationToken));
        void Job()
        {
            if (!done.Task.IsCompleted)
            {
                try
                {
                    done.TrySetResult(work());
                }
                catch (Exception ex)
                {
                    done.TrySetException(ex);
                }
            }

            registration.Dispose();
        }

        bool queued;
        try
        {
            queued = _work.TryAdd(Job);
        }
        catch (InvalidOperationException)
        {
            queued = false; // disposed: adding is complete
        }

        if (!queued)
        {
            registration.Dispose();
            done.TrySetException(new ObjectDisposedException(nameof(BackgroundCpu)));
        }

        return done.Task;
    }

    public void Dispose() => _work.CompleteAdding();

    private void Run()
    {
        if (OperatingSystem.IsLinux())
        {
            // Per-thread on Linux (who = the thread id); raising one's own nice value needs no privilege. Best effort.
            _ = SetPriority(0, GetThreadId(), 19);
        }

        foreach (var job in _work.GetConsumingEnumerable())
        {
            job();
        }
    }

    [LibraryImport("libc", EntryPoint = "setpriority")]
    private static partial int SetPriority(int which, int who, int priority);

    [LibraryImport("libc", EntryPoint = "gettid")]
    private static partial int GetThreadId();
}
