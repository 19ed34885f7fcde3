using System.Collections.Concurrent;
using System.Diagnostics;

namespace Coinop.Provider.Workloads.Sandboxes;

/// <summary>
/// Starts every sandboxed process from one dedicated thread that lives as long as the agent. The parent-death signal
/// (setpriv --pdeathsig, bwrap --die-with-parent) fires when the *thread* that forked the child exits, not the
/// process; a thread-pool thread that retires would kill healthy copies. This thread never exits, so the signal
/// fires only when the agent itself dies.
/// </summary>
internal static class Spawner
{
    private static readonly BlockingCollection<(ProcessStartInfo Info, TaskCompletionSource<Process> Done)> Requests = [];
    private static readonly Lazy<Thread> Worker = new(() =>
    {
        var thread = new Thread(Run) { IsBackground = true, Name = "coinop-workload-spawner" };
        thread.Start();
        return thread;
    });

    public static Task<Process> StartAsync(ProcessStartInfo info)
    {
        _ = Worker.Value;
        var done = new TaskCompletionSource<Process>(TaskCreationOptions.RunContinuationsAsynchronously);
        Requests.Add((info, done));
        return done.Task;
    }

    private static void Run()
    {
        foreach (var (info, done) in Requests.GetConsumingEnumerable())
        {
            try
            {
                var process = new Process { StartInfo = info, EnableRaisingEvents = true };
                process.Start();
                done.TrySetResult(process);
            }
            catch (Exception ex)
            {
                done.TrySetException(ex);
            }
        }
    }
}
