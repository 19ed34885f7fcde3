using System.Text;

namespace Coinop.Workloads.Tests.Infrastructure;

/// <summary>A process of a workload copy as the process table shows it: its host pid and the epoch in its environment.</summary>
public sealed record CopyProcess(int Pid, long? Epoch);

/// <summary>
/// Reads the operating system's process table (<c>/proc/*/cmdline</c>) continuously on one thread for every watched
/// workload and records how many copies of each were alive at the same instant. A copy is a process whose whole argv
/// is exactly the workload's command line (the sandbox's wrappers carry the command in their argv too, but never as all
/// of it; every test workload gets a unique marker as its last argument) and whose parent is not one: a shell forks
/// itself before it execs each command it runs, and that fork is part of the copy, not a second one.
/// </summary>
public sealed class CopyWatcher
{
    private static readonly Lazy<CopyWatcher> Shared = new(() => new CopyWatcher());

    private readonly Lock _gate = new();
    private readonly List<Watch> _watches = [];
    private readonly Dictionary<int, long?> _epochs = [];
    private readonly SemaphoreSlim _wake = new(0);

    private CopyWatcher()
    {
        new Thread(ScanLoop) { IsBackground = true, Name = "copy-watcher" }.Start();
    }

    /// <summary>Watches copies whose argv is exactly <paramref name="argv"/>, from now until the watch is disposed.</summary>
    public static Watch Start(IReadOnlyList<string> argv)
    {
        var watcher = Shared.Value;
        var watch = new Watch(watcher, [.. argv]);
        lock (watcher._gate)
        {
            watcher._watches.Add(watch);
        }

        watcher._wake.Release();
        return watch;
    }

    private void Stop(Watch watch)
    {
        lock (_gate)
        {
            _watches.Remove(watch);
        }
    }

    private void ScanLoop()
    {
        while (true)
        {
            Watch[] watches;
            lock (_gate)
            {
                watches = [.. _watches];
            }

            if (watches.Length == 0)
            {
                _wake.Wait();
                continue;
            }

            var found = watches.ToDictionary(w => w, _ => new List<(CopyProcess Copy, int Parent)>());
            foreach (var dir in Directory.EnumerateDirectories("/proc"))
            {
                if (!int.TryParse(Path.GetFileName(dir), out var pid) || ReadArgv(pid) is not { } argv)
                {
                    continue;
                }

                foreach (var watch in watches)
                {
                    // The parent is read right after the argv: a shell's short-lived fork (a `$(...)`, or a child
                    // before its exec) that is gone by the end of the scan must not count as a copy of its own.
                    if (argv.SequenceEqual(watch.Argv) && ParentOf(pid) is { } parent)
                    {
                        found[watch].Add((new CopyProcess(pid, EpochOf(pid)), parent));
                    }
                }
            }

            foreach (var (watch, copies) in found)
            {
                var pids = copies.Select(c => c.Copy.Pid).ToHashSet();
                watch.Observe([.. copies.Where(c => !pids.Contains(c.Parent)).Select(c => c.Copy)]);
            }

            Thread.Sleep(2);
        }
    }

    private static string[]? ReadArgv(int pid)
    {
        try
        {
            var bytes = File.ReadAllBytes($"/proc/{pid}/cmdline");
            return bytes.Length == 0 ? null : Encoding.UTF8.GetString(bytes).TrimEnd('\0').Split('\0');
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null; // gone meanwhile
        }
    }

    /// <summary>The parent's pid, or null when the process has gone (it is then not alive at this instant).</summary>
    private static int? ParentOf(int pid)
    {
        try
        {
            // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so read after the last ')'.
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return fields[0] == "Z" ? null : int.TryParse(fields[1], out var ppid) ? ppid : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private long? EpochOf(int pid)
    {
        if (_epochs.TryGetValue(pid, out var known))
        {
            return known;
        }

        long? epoch = null;
        try
        {
            foreach (var variable in Encoding.UTF8.GetString(File.ReadAllBytes($"/proc/{pid}/environ")).Split('\0'))
            {
                if (variable.StartsWith("COINOP_EPOCH=", StringComparison.Ordinal) && long.TryParse(variable[13..], out var e))
                {
                    epoch = e;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
        }

        if (_epochs.Count > 10_000)
        {
            _epochs.Clear();
        }

        _epochs[pid] = epoch;
        return epoch;
    }

    /// <summary>One workload's copies as seen so far.</summary>
    public sealed class Watch : IDisposable
    {
        private readonly CopyWatcher _watcher;
        private readonly Lock _gate = new();
        private readonly HashSet<int> _seen = [];
        private readonly List<(Func<IReadOnlyList<CopyProcess>, bool> Done, TaskCompletionSource<IReadOnlyList<CopyProcess>> Signal)> _waiters = [];
        private IReadOnlyList<CopyProcess> _current = [];
        private string _overlap = "";

        internal Watch(CopyWatcher watcher, string[] argv)
        {
            _watcher = watcher;
            Argv = argv;
        }

        internal string[] Argv { get; }

        /// <summary>The most copies alive at one instant.</summary>
        public int MaxConcurrent { get; private set; }

        /// <summary>How many distinct copies (processes) were seen.</summary>
        public int Seen
        {
            get
            {
                lock (_gate)
                {
                    return _seen.Count;
                }
            }
        }

        public IReadOnlyList<CopyProcess> Current
        {
            get
            {
                lock (_gate)
                {
                    return _current;
                }
            }
        }

        /// <summary>Asserts the property every scenario checks: the copy was seen, and never two at once.</summary>
        public void AssertSingleWriter(int minimumSeen = 1)
        {
            Assert.True(Seen >= minimumSeen, $"the process table showed {Seen} copies of the workload, expected at least {minimumSeen}");
            Assert.True(MaxConcurrent <= 1, $"{MaxConcurrent} copies of the workload ran at once: {_overlap}");
        }

        /// <summary>Waits until the live copies satisfy <paramref name="done"/>.</summary>
        public async Task<IReadOnlyList<CopyProcess>> WaitAsync(Func<IReadOnlyList<CopyProcess>, bool> done, string what, TimeSpan? timeout = null)
        {
            var signal = new TaskCompletionSource<IReadOnlyList<CopyProcess>>(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (_gate)
            {
                if (done(_current))
                {
                    return _current;
                }

                _waiters.Add((done, signal));
            }

            var limit = timeout ?? TimeSpan.FromSeconds(60);
            if (await Task.WhenAny(signal.Task, Task.Delay(limit, TestContext.Current.CancellationToken)) != signal.Task)
            {
                throw new TimeoutException($"the process table did not show {what} within {limit}; it shows {Describe(Current)}");
            }

            return await signal.Task;
        }

        public Task<IReadOnlyList<CopyProcess>> WaitForEpochAsync(long epoch, TimeSpan? timeout = null) =>
            WaitAsync(c => c.Count == 1 && c[0].Epoch == epoch, $"one copy at epoch {epoch}", timeout);

        public Task WaitForNoneAsync(TimeSpan? timeout = null) => WaitAsync(c => c.Count == 0, "no copy", timeout);

        public void Dispose() => _watcher.Stop(this);

        internal void Observe(List<CopyProcess> copies)
        {
            List<TaskCompletionSource<IReadOnlyList<CopyProcess>>> done = [];
            lock (_gate)
            {
                _current = copies;
                foreach (var copy in copies)
                {
                    _seen.Add(copy.Pid);
                }

                if (copies.Count > MaxConcurrent)
                {
                    MaxConcurrent = copies.Count;
                    _overlap = Describe(copies);
                }

                for (var i = _waiters.Count - 1; i >= 0; i--)
                {
                    if (_waiters[i].Done(copies))
                    {
                        done.Add(_waiters[i].Signal);
                        _waiters.RemoveAt(i);
                    }
                }
            }

            foreach (var signal in done)
            {
                signal.TrySetResult(copies);
            }
        }

        private static string Describe(IReadOnlyList<CopyProcess> copies) =>
            copies.Count == 0 ? "none" : string.Join(", ", copies.Select(c => $"pid {c.Pid} epoch {c.Epoch?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "?"}"));
    }
}
