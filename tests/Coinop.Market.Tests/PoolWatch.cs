using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using Xunit.v3;

[assembly: Coinop.Market.Tests.PoolWatch.Running]
[assembly: AssemblyFixture(typeof(Coinop.Market.Tests.PoolWatch))]

namespace Coinop.Market.Tests;

/// <summary>
/// A diagnostic, never a check. The markets of this assembly run in one process, so whatever stops that process (a
/// test blocking the thread pool, a long garbage collection) makes every market miss its heartbeats and renewals, and
/// an unrelated test fails. A dedicated thread (not the pool) posts a work item to the pool every 250 ms and times how
/// long it waits, and also times its own sleep (late when the whole process was paused: a blocking collection). A
/// delay of a second or more is written, with the pool's and the GC's figures and the tests running at that moment,
/// to <c>TestResults/pool-stalls.log</c> beside the test assembly (or to the file COINOP_POOL_WATCH names), and the run
/// ends with one line of maxima. It found the stopped markets kept alive by ASP.NET Core's rate limiter
/// (<c>StoppedMarketTests</c>): a 10 GB heap and collections pausing the process for seconds.
/// </summary>
public sealed class PoolWatch : IDisposable
{
    private static readonly TimeSpan Every = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan Worth = TimeSpan.FromSeconds(1);
    private static readonly ConcurrentDictionary<string, long> Tests = new();

    private readonly string _path;
    private readonly Thread _thread;
    private readonly ManualResetEventSlim _stop = new();
    private readonly Lock _write = new();
    private TimeSpan _maxLag;
    private TimeSpan _maxOversleep;
    private long _maxHeap;
    private int _stalls;

    public PoolWatch()
    {
        _path = Environment.GetEnvironmentVariable("COINOP_POOL_WATCH") is { Length: > 0 } named
            ? named
            : Path.Combine(AppContext.BaseDirectory, "TestResults", "pool-stalls.log");
        Directory.CreateDirectory(Path.GetDirectoryName(_path)!);
        _thread = new Thread(Watch) { IsBackground = true, Name = "pool watch", Priority = ThreadPriority.AboveNormal };
        _thread.Start();
    }

    private void Watch()
    {
        using var ran = new ManualResetEventSlim();
        while (!_stop.IsSet)
        {
            var slept = Stopwatch.GetTimestamp();
            if (_stop.Wait(Every))
            {
                return;
            }

            // The watcher's own lateness: the whole process (or the machine) was paused, not just the pool.
            var oversleep = Stopwatch.GetElapsedTime(slept) - Every;
            if (oversleep > _maxOversleep)
            {
                _maxOversleep = oversleep;
            }

            _maxHeap = Math.Max(_maxHeap, GC.GetGCMemoryInfo().HeapSizeBytes);

            ran.Reset();
            var posted = Stopwatch.GetTimestamp();
            ThreadPool.UnsafeQueueUserWorkItem(static e => e.Set(), ran, preferLocal: false);
            var logged = Worth;
            while (!ran.Wait(Every))
            {
                var waited = Stopwatch.GetElapsedTime(posted);
                if (waited >= logged)
                {
                    Write($"still waiting {waited.TotalSeconds:F1} s", oversleep);
                    logged *= 2;
                }
            }

            var lag = Stopwatch.GetElapsedTime(posted);
            if (lag > _maxLag)
            {
                _maxLag = lag;
            }

            if (lag >= Worth)
            {
                _stalls++;
                Write($"pool lag {lag.TotalSeconds:F1} s", oversleep);
            }
            else if (oversleep >= Worth)
            {
                Write($"watcher overslept {oversleep.TotalSeconds:F1} s", oversleep);
            }
        }
    }

    private void Write(string what, TimeSpan oversleep)
    {
        var gc = GC.GetGCMemoryInfo();
        var now = Stopwatch.GetTimestamp();
        var running = string.Join("; ", Tests.OrderBy(t => t.Value)
            .Select(t => $"{t.Key} ({Stopwatch.GetElapsedTime(t.Value, now).TotalSeconds:F0} s)"));
        var line = string.Create(CultureInfo.InvariantCulture,
            $"{DateTime.UtcNow:HH:mm:ss.fff} {what}; watcher overslept {oversleep.TotalMilliseconds:F0} ms; pool threads {ThreadPool.ThreadCount}, "
            + $"queued {ThreadPool.PendingWorkItemCount}, done {ThreadPool.CompletedWorkItemCount}; gc {GC.CollectionCount(0)}/{GC.CollectionCount(1)}/{GC.CollectionCount(2)}, "
            + $"paused {GC.GetTotalPauseDuration().TotalMilliseconds:F0} ms in all, heap {gc.HeapSizeBytes >> 20} MB; process cpu "
            + $"{Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds:F1} s; running: {running}");
        lock (_write)
        {
            File.AppendAllText(_path, line + Environment.NewLine);
        }
    }

    public void Dispose()
    {
        _stop.Set();
        _thread.Join();
        lock (_write)
        {
            File.AppendAllText(_path, string.Create(CultureInfo.InvariantCulture,
                $"{DateTime.UtcNow:HH:mm:ss.fff} end: {_stalls} pool stalls of a second or more, max pool lag {_maxLag.TotalMilliseconds:F0} ms, "
                + $"max watcher oversleep {_maxOversleep.TotalMilliseconds:F0} ms, max heap {_maxHeap >> 20} MB, gc paused {GC.GetTotalPauseDuration().TotalMilliseconds:F0} ms in all{Environment.NewLine}"));
        }

        _stop.Dispose();
    }

    /// <summary>Keeps the names of the tests running now, for the stall lines.</summary>
    [AttributeUsage(AttributeTargets.Assembly)]
    public sealed class RunningAttribute : BeforeAfterTestAttribute
    {
        public override void Before(MethodInfo methodUnderTest, IXunitTest test) =>
            Tests[test.TestDisplayName] = Stopwatch.GetTimestamp();

        public override void After(MethodInfo methodUnderTest, IXunitTest test) =>
            Tests.TryRemove(test.TestDisplayName, out _);
    }
}
