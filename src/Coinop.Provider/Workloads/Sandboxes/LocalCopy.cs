using System.Diagnostics;
using System.Threading.Channels;
using Coinop.Provider.Workloads.Limits;
using Coinop.Provider.Workloads.Metering;

namespace Coinop.Provider.Workloads.Sandboxes;

/// <summary>
/// A copy running as a local process tree (bubblewrap or plain process): output pumps, metering, the CPU duty cycle
/// when there is no cgroup, the exit watcher and stop. The members of a copy are its cgroup's processes, its process
/// tree and its process group, so a child that double-forks out of the tree is still found while a cgroup exists.
/// </summary>
internal sealed class LocalCopy : IRunningCopy
{
    private static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan StopPoll = TimeSpan.FromMilliseconds(50);

    private readonly Process _process;
    private readonly int _pid;
    private readonly long _rootStartTicks;
    private readonly CopyCgroup? _cgroup;
    private readonly int _wrapperDepth;
    private readonly Func<CancellationToken, ValueTask<Stream>> _connect;
    private readonly IDisposable? _owned;
    private readonly TimeProvider _time;
    private readonly TimeSpan _sampleInterval;
    private readonly CpuThrottle? _throttle;
    private readonly UsageMeter _meter;
    private readonly Channel<OutputChunk> _output = Channel.CreateBounded<OutputChunk>(
        new BoundedChannelOptions(256) { SingleWriter = false, SingleReader = true });
    private readonly TaskCompletionSource<CopyExit> _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stopSampling = new();
    private volatile bool _stopRequested;
    private volatile string? _limitExceeded;
    private bool _held;

    private LocalCopy(Process process, CopyCgroup? cgroup, int wrapperDepth, double cpuCores, Func<CancellationToken, ValueTask<Stream>> connect, TimeProvider time, TimeSpan sampleInterval, IDisposable? owned)
    {
        _owned = owned;
        _process = process;
        // Kept apart from the Process object, which is disposed once the copy is over.
        _pid = process.Id;
        _rootStartTicks = ProcFs.ReadStat(_pid)?.StartTicks ?? -1;
        _cgroup = cgroup;
        _wrapperDepth = wrapperDepth;
        _connect = connect;
        _time = time;
        _sampleInterval = sampleInterval;
        _throttle = cgroup is null ? new CpuThrottle(cpuCores) : null;
        _meter = new UsageMeter(cgroup, time);
    }

    public int Pid => _pid;

    public ChannelReader<OutputChunk> Output => _output.Reader;

    public Task<CopyExit> Exited => _exited.Task;

    /// <param name="wrapperDepth">How many levels of the tree are the sandbox's own launchers (not signalled with SIGTERM).</param>
    /// <param name="owned">Disposed with the copy (its port's resources).</param>
    public static LocalCopy Run(Process process, CopyCgroup? cgroup, int wrapperDepth, double cpuCores, Func<CancellationToken, ValueTask<Stream>> connect, TimeProvider time, TimeSpan sampleInterval,
        IDisposable? owned = null)
    {
        var copy = new LocalCopy(process, cgroup, wrapperDepth, cpuCores, connect, time, sampleInterval, owned);
        var pumps = Task.WhenAll(
            copy.PumpAsync(process.StandardOutput.BaseStream, OutputStream.Stdout),
            copy.PumpAsync(process.StandardError.BaseStream, OutputStream.Stderr));
        _ = copy.SampleLoopAsync();
        _ = copy.WatchAsync(pumps);
        return copy;
    }

    public IReadOnlyList<int> LivePids() => [.. Members().Select(m => m.Pid)];

    public UsageSnapshot Usage() => _meter.Snapshot();

    public ValueTask<Stream> ConnectToPortAsync(CancellationToken cancellationToken) => _connect(cancellationToken);

    public async Task<CopyExit> StopAsync(TimeSpan grace, CancellationToken cancellationToken)
    {
        _stopRequested = true;
        if (!_exited.Task.IsCompleted)
        {
            // Each process gets SIGTERM once; the list is re-read during the grace period because a copy stopped right
            // after it started may not have reached its command yet when the stop arrives.
            var signalled = new HashSet<int>();
            var deadline = _time.GetTimestamp() + (long)(grace.TotalSeconds * _time.TimestampFrequency);
            while (!_exited.Task.IsCompleted && _time.GetTimestamp() < deadline)
            {
                foreach (var (pid, depth) in Members())
                {
                    if (IsWorkload(depth) && signalled.Add(pid))
                    {
                        LinuxNative.Signal(pid, LinuxNative.SigTerm);
                        // A copy held by the CPU duty cycle must run to handle SIGTERM.
                        LinuxNative.Signal(pid, LinuxNative.SigCont);
                    }
                }

                var left = TimeSpan.FromSeconds((deadline - _time.GetTimestamp()) / (double)_time.TimestampFrequency);
                var wait = left < StopPoll ? left : StopPoll;
                if (wait > TimeSpan.Zero)
                {
                    await Task.WhenAny(_exited.Task, Task.Delay(wait, _time, cancellationToken)).ConfigureAwait(false);
                }
            }

            KillAll();
        }

        return await _exited.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Ends the copy at once because it broke a limit; the reason goes to its stderr and its exit.</summary>
    public void Kill(string reason)
    {
        _limitExceeded = reason;
        _output.Writer.TryWrite(new OutputChunk(OutputStream.Stderr, System.Text.Encoding.UTF8.GetBytes($"coinop: the copy was stopped: {reason}\n")));
        KillAll();
    }

    public async ValueTask DisposeAsync()
    {
        KillAll();
        await Task.WhenAny(_exited.Task, Task.Delay(TimeSpan.FromSeconds(10))).ConfigureAwait(false);
        _owned?.Dispose();
        _process.Dispose();
        _stopSampling.Dispose();
    }

    private void KillAll()
    {
        // Repeat until nothing is left: a process may fork between listing and killing.
        for (var round = 0; round < 5; round++)
        {
            var members = Members();
            if (members.Count == 0)
            {
                return;
            }

            foreach (var (pid, _) in members)
            {
                LinuxNative.Signal(pid, LinuxNative.SigKill);
            }
        }
    }

    /// <summary>Live processes of the copy with their depth below the root (-1 when found only by cgroup or group).</summary>
    private List<(int Pid, int Depth)> Members()
    {
        var result = new Dictionary<int, int>();
        foreach (var (stat, depth) in Tree())
        {
            result[stat.Pid] = depth;
        }

        if (_cgroup is not null)
        {
            foreach (var pid in _cgroup.Members())
            {
                result.TryAdd(pid, -1);
            }
        }

        return [.. result.Select(kv => (kv.Key, kv.Value))];
    }

    /// <summary>The process tree below the root with each process's stat, read in one pass over /proc.</summary>
    private List<(ProcStat Stat, int Depth)> Tree() =>
        // The root pid is only trusted while it is still the process we started (pids are reused after reaping).
        ProcFs.ReadStat(_pid) is { } root && root.StartTicks == _rootStartTicks ? ProcFs.Tree(_pid) : [];

    private bool IsWorkload(int depth) => depth < 0 || depth >= _wrapperDepth;

    private async Task PumpAsync(Stream stream, OutputStream which)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            int n;
            while ((n = await stream.ReadAsync(buffer).ConfigureAwait(false)) > 0)
            {
                await _output.Writer.WriteAsync(new OutputChunk(which, buffer.AsMemory(0, n).ToArray())).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or ChannelClosedException)
        {
        }
    }

    private async Task SampleLoopAsync()
    {
        var token = _stopSampling.Token;
        var last = _time.GetTimestamp();
        try
        {
            while (!token.IsCancellationRequested)
            {
                // Without a cgroup the tree's stats are the sample: no second read of each process.
                var tree = _cgroup is null ? Tree() : [];
                _meter.Sample([.. tree.Select(m => m.Stat)]);
                if (_throttle is not null)
                {
                    var now = _time.GetTimestamp();
                    var hold = _throttle.Hold(_meter.CpuSeconds, _time.GetElapsedTime(last, now).TotalSeconds);
                    last = now;
                    // While held, stop again every tick: a process forked just before the hold is caught on the next.
                    if (hold || _held)
                    {
                        foreach (var (stat, depth) in tree)
                        {
                            if (IsWorkload(depth))
                            {
                                LinuxNative.Signal(stat.Pid, hold ? LinuxNative.SigStop : LinuxNative.SigCont);
                            }
                        }
                    }

                    _held = hold;
                }

                await Task.Delay(_sampleInterval, _time, token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task WatchAsync(Task pumps)
    {
        await _process.WaitForExitAsync().ConfigureAwait(false);
        var exitCode = _process.ExitCode;
        // The copy is over when its top process is: nothing it started may outlive it.
        KillAll();
        if (await Task.WhenAny(pumps, Task.Delay(DrainTimeout)).ConfigureAwait(false) != pumps)
        {
            // Something outside our reach still holds the pipes; stop reading them.
            _process.StandardOutput.BaseStream.Dispose();
            _process.StandardError.BaseStream.Dispose();
        }

        await _stopSampling.CancelAsync().ConfigureAwait(false);
        // Without a cgroup the meter keeps each process's last reading; with one this reads the final counters.
        _meter.Sample([]);
        _meter.Freeze();
        var oom = _cgroup is not null && _cgroup.OomKills() > 0;
        if (_cgroup is not null)
        {
            for (var attempt = 0; attempt < 100 && !_cgroup.TryRemove(); attempt++)
            {
                KillAll();
                await Task.Delay(20).ConfigureAwait(false);
            }
        }

        _output.Writer.TryComplete();
        _exited.TrySetResult(new CopyExit(exitCode, oom, _stopRequested, _limitExceeded));
    }
}
