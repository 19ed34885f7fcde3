namespace Coinop.Provider.Workloads.Limits;

/// <summary>
/// The CPU cap used when no cgroup is writable: a token bucket of CPU time. Each tick adds <c>cores × elapsed</c>
/// (at most one second's worth, so an idle copy cannot save up a long burst) and removes the CPU the copy used; when
/// the bucket is empty the copy is held (SIGSTOP) until it refills (SIGCONT). It is approximate: between ticks the
/// copy runs unchecked, so it overshoots by up to a tick's worth of CPU per core it keeps busy.
/// </summary>
internal sealed class CpuThrottle(double cores)
{
    private double _tokens;
    private double _lastCpu;
    private bool _started;

    /// <summary>True while the copy should be held; call once per tick with its total CPU seconds so far.</summary>
    public bool Hold(double cpuSeconds, double elapsedSeconds)
    {
        if (!_started)
        {
            _started = true;
            _lastCpu = cpuSeconds;
        }

        _tokens = Math.Min(_tokens + cores * Math.Max(0, elapsedSeconds), cores);
        _tokens -= Math.Max(0, cpuSeconds - _lastCpu);
        _lastCpu = cpuSeconds;
        return _tokens < 0;
    }
}
