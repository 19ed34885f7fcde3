using Coinop.Provider.Workloads.Limits;
using Coinop.Provider.Workloads.Sandboxes;

namespace Coinop.Provider.Workloads.Metering;

/// <summary>
/// Integrates one copy's resource use from periodic samples: CPU from the cgroup's counter (else the sum of each
/// process's own CPU ticks, remembered per process so exited ones still count), memory from the cgroup (else the
/// sum of resident sets) multiplied by the time until the next sample. Every figure only ever grows. Without a cgroup,
/// CPU a process used after its last sample is lost, so short-lived processes are under-counted by up to one interval.
/// </summary>
internal sealed class UsageMeter
{
    private const double Mib = 1024.0 * 1024.0;

    private readonly CopyCgroup? _cgroup;
    private readonly TimeProvider _time;
    private readonly long _start;
    private readonly Dictionary<(int Pid, long StartTicks), long> _ticks = [];
    private readonly Lock _gate = new();
    private long _retiredTicks;
    private double _cpuSeconds;
    private double _memoryMibSeconds;
    private double _memoryMib;
    private double _peakMib;
    private long _last;
    private long? _end;

    public UsageMeter(CopyCgroup? cgroup, TimeProvider time)
    {
        _cgroup = cgroup;
        _time = time;
        _start = _last = time.GetTimestamp();
    }

    public double CpuSeconds
    {
        get
        {
            lock (_gate)
            {
                return _cpuSeconds;
            }
        }
    }

    /// <summary>Takes a sample; <paramref name="processes"/> are the copy's live processes (used without a cgroup).</summary>
    public void Sample(IReadOnlyCollection<ProcStat> processes)
    {
        double cpu, memoryMib;
        if (_cgroup is not null)
        {
            cpu = _cgroup.CpuSeconds();
            memoryMib = _cgroup.MemoryBytes() / Mib;
        }
        else
        {
            lock (_gate)
            {
                // A process missing from this sample has exited: its last reading moves to the retired sum, so the
                // table holds only live processes however many short-lived ones a copy spawns.
                if (processes.Count > 0)
                {
                    var live = processes.Select(p => (p.Pid, p.StartTicks)).ToHashSet();
                    foreach (var gone in _ticks.Keys.Where(k => !live.Contains(k)).ToList())
                    {
                        _retiredTicks += _ticks[gone];
                        _ticks.Remove(gone);
                    }
                }

                foreach (var p in processes)
                {
                    _ticks[(p.Pid, p.StartTicks)] = p.CpuTicks;
                }

                cpu = (_retiredTicks + _ticks.Values.Sum()) / (double)LinuxNative.ClockTicksPerSecond;
            }

            memoryMib = processes.Sum(p => p.RssPages) * (double)Environment.SystemPageSize / Mib;
        }

        lock (_gate)
        {
            if (_end is not null)
            {
                return;
            }

            var now = _time.GetTimestamp();
            // The previous reading held until now; then the new one starts.
            _memoryMibSeconds += _memoryMib * _time.GetElapsedTime(_last, now).TotalSeconds;
            _last = now;
            _memoryMib = memoryMib;
            _peakMib = Math.Max(_peakMib, memoryMib);
            _cpuSeconds = Math.Max(_cpuSeconds, cpu);
        }
    }

    /// <summary>The copy has ended: wall time and integrals stop here.</summary>
    public void Freeze()
    {
        lock (_gate)
        {
            if (_end is null)
            {
                var now = _time.GetTimestamp();
                _memoryMibSeconds += _memoryMib * _time.GetElapsedTime(_last, now).TotalSeconds;
                _last = now;
                _memoryMib = 0;
                _end = now;
            }
        }
    }

    public UsageSnapshot Snapshot()
    {
        lock (_gate)
        {
            var now = _end ?? _time.GetTimestamp();
            // Include the current reading up to now so two snapshots between samples still differ sensibly.
            var pending = _end is null ? _memoryMib * _time.GetElapsedTime(_last, now).TotalSeconds : 0;
            return new UsageSnapshot(_cpuSeconds, _memoryMibSeconds + pending, _time.GetElapsedTime(_start, now).TotalSeconds, _memoryMib, _peakMib);
        }
    }
}
