namespace Coinop.Provider.Workloads;

/// <summary>
/// Which copies and standby reservations a <see cref="WorkloadHost"/> holds, and the rules that admit them: the epoch
/// rules of the single writer (see <see cref="WorkloadHost"/>) and the provider's capacity. No I/O and no lock of its
/// own: the host calls it under its gate.
/// </summary>
internal sealed class CopyAdmission(WorkloadHostOptions options)
{
    private readonly Dictionary<string, EpochState> _epochs = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ManagedCopy> _copies = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Reservation> _standbys = new(StringComparer.Ordinal);

    /// <summary>Every copy held.</summary>
    public IEnumerable<ManagedCopy> Copies => _copies.Values;

    public WorkloadCapacityView Capacity()
    {
        var (cores, memory) = Used();
        return new WorkloadCapacityView(options.CpuCores, options.MemoryMb, cores, memory, _copies.Count, _standbys.Count);
    }

    /// <summary>The copy held for a workload, if any.</summary>
    public ManagedCopy? Find(string workloadId) => _copies.GetValueOrDefault(workloadId);

    /// <summary>
    /// Admits a start of <paramref name="spec"/>: null and the new copy (made by <paramref name="create"/>, taking over
    /// the workload's standby reservation) with the older copy it replaces, which must be stopped first; or the refusal.
    /// </summary>
    public StartResult? TryAdmit(CopySpec spec, Func<ManagedCopy> create, out ManagedCopy? admitted, out ManagedCopy? previous)
    {
        (admitted, previous) = (null, null);
        var state = _epochs.TryGetValue(spec.WorkloadId, out var s) ? s : new EpochState(-1, false);
        if (spec.Epoch < state.Highest)
        {
            return StartResult.Refused(StartRefusal.StaleEpoch, $"epoch {spec.Epoch} is older than epoch {state.Highest} already seen");
        }

        if (spec.Epoch == state.Highest && state.Used)
        {
            return StartResult.Refused(StartRefusal.EpochAlreadyUsed, $"epoch {spec.Epoch} was already started or stopped here");
        }

        var replaced = _copies.GetValueOrDefault(spec.WorkloadId);
        // A standby reservation for this workload becomes the running copy's capacity.
        var reservation = _standbys.GetValueOrDefault(spec.WorkloadId);
        var (cores, memory) = Used(replaced, reservation);
        if (!Fits(cores + spec.CpuCores, memory + spec.MemoryMb))
        {
            return StartResult.Refused(StartRefusal.OverCapacity,
                $"needs {spec.CpuCores} cores and {spec.MemoryMb} MB; {options.CpuCores - cores:0.##} cores and {options.MemoryMb - memory} MB free");
        }

        _epochs[spec.WorkloadId] = new EpochState(spec.Epoch, true);
        _standbys.Remove(spec.WorkloadId);
        admitted = create();
        _copies[spec.WorkloadId] = admitted;
        previous = replaced;
        return null;
    }

    /// <summary>
    /// A stop for <paramref name="epoch"/>: burns the epoch for later starts, drops a standby at or below it, and returns
    /// the copy to stop (null when none runs at or below that epoch).
    /// </summary>
    public ManagedCopy? Stop(string workloadId, long epoch)
    {
        var state = _epochs.TryGetValue(workloadId, out var s) ? s : new EpochState(-1, false);
        if (epoch > state.Highest || (epoch == state.Highest && !state.Used))
        {
            _epochs[workloadId] = new EpochState(epoch, true);
        }

        if (_standbys.TryGetValue(workloadId, out var reservation) && reservation.Epoch <= epoch)
        {
            _standbys.Remove(workloadId);
        }

        var copy = _copies.GetValueOrDefault(workloadId);
        return copy is null || copy.Spec.Epoch > epoch ? null : copy;
    }

    /// <summary>Holds capacity for a warm standby at <paramref name="epoch"/>; false when it does not fit or the epoch is stale.</summary>
    public bool Reserve(string workloadId, long epoch, double cpuCores, long memoryMb)
    {
        if (_epochs.TryGetValue(workloadId, out var state) && epoch < state.Highest)
        {
            return false;
        }

        var existing = _standbys.GetValueOrDefault(workloadId);
        var (cores, memory) = Used(exceptStandby: existing);
        if (!Fits(cores + cpuCores, memory + memoryMb))
        {
            return false;
        }

        _standbys[workloadId] = new Reservation(epoch, cpuCores, memoryMb);
        return true;
    }

    public void Release(string workloadId) => _standbys.Remove(workloadId);

    /// <summary>The copy is gone: its capacity is free again (unless a newer copy already took its place).</summary>
    public void Forget(ManagedCopy managed)
    {
        if (_copies.TryGetValue(managed.Spec.WorkloadId, out var current) && current == managed)
        {
            _copies.Remove(managed.Spec.WorkloadId);
        }
    }

    /// <summary>Cores and memory held by running copies and standby reservations, leaving out the ones being replaced.</summary>
    private (double Cores, long MemoryMb) Used(ManagedCopy? exceptCopy = null, Reservation? exceptStandby = null)
    {
        var copies = _copies.Values.Where(c => c != exceptCopy).ToList();
        var standbys = _standbys.Values.Where(r => r != exceptStandby).ToList();
        return (copies.Sum(c => c.Spec.CpuCores) + standbys.Sum(r => r.CpuCores), copies.Sum(c => c.Spec.MemoryMb) + standbys.Sum(r => r.MemoryMb));
    }

    private bool Fits(double cores, long memoryMb) => cores <= options.CpuCores + 1e-9 && memoryMb <= options.MemoryMb;

    private readonly record struct EpochState(long Highest, bool Used);

    private sealed record Reservation(long Epoch, double CpuCores, long MemoryMb);
}
