using System.Collections.Concurrent;
using Coinop.Core.Work;
using Coinop.Core.Workloads;
using Coinop.Storage.Workloads;

namespace Coinop.Market.Workloads;

/// <summary>An open workload as the supervisor's loop keeps it: its stored form (with fresher contact times) and the lease proof of its copy.</summary>
internal sealed class OpenWorkload(StoredWorkload stored)
{
    public StoredWorkload Stored { get; set; } = stored;

    public Workload Workload => Stored.Workload;

    public string Id => Stored.Workload.Id;

    /// <summary>The kernel lease of the current copy, as last claimed, granted or renewed here.</summary>
    public WorkLease? Lease { get; set; }

    /// <summary>How far the workload's time is settled, as billing last said; null until it first did.</summary>
    public DateTimeOffset? SettledUntil { get; set; }

    /// <summary>Rates of providers just placed, saved with the next write.</summary>
    public Dictionary<string, decimal> PlacedRates { get; } = new(StringComparer.Ordinal);
}

/// <summary>
/// The open workloads of this market node. Written only by the supervisor's loop; the one thing other threads read is
/// which copy of a workload may run now (<see cref="IsCurrentCopy"/>, asked by the sessions' reader loops for every chunk).
/// </summary>
internal sealed class OpenWorkloads
{
    private readonly Dictionary<string, OpenWorkload> _open = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, CurrentCopy> _current = new(StringComparer.Ordinal);

    public int Count => _open.Count;

    /// <summary>The open workloads now (the loop may add or remove while going through them).</summary>
    public List<OpenWorkload> Snapshot() => [.. _open.Values];

    /// <summary>The open workloads, for reading only (not while adding or removing).</summary>
    public IEnumerable<OpenWorkload> All => _open.Values;

    public bool TryGet(string id, out OpenWorkload entry) => _open.TryGetValue(id, out entry!);

    public bool Contains(string id) => _open.ContainsKey(id);

    /// <summary>Adds <paramref name="entry"/>; which copy may run is published by <see cref="UpdateCurrent"/> once its effects ran.</summary>
    public void Add(OpenWorkload entry) => _open[entry.Id] = entry;

    public void Remove(string id)
    {
        _open.Remove(id);
        _current.TryRemove(id, out _);
    }

    /// <summary>True when <paramref name="providerId"/> runs the copy of <paramref name="workloadId"/> allowed to run now, at <paramref name="epoch"/>.</summary>
    public bool IsCurrentCopy(string workloadId, string providerId, long epoch) =>
        _current.TryGetValue(workloadId, out var copy) && copy.Epoch == epoch && copy.Provider == providerId;

    /// <summary>Publishes which copy of <paramref name="entry"/> may run, after a change.</summary>
    public void UpdateCurrent(OpenWorkload entry)
    {
        var w = entry.Workload;
        if (w.Provider is { } provider && w.AllowedToRun(provider, w.Epoch))
        {
            _current[w.Id] = new CurrentCopy(provider, w.Epoch);
        }
        else
        {
            _current.TryRemove(w.Id, out _);
        }
    }

    private readonly record struct CurrentCopy(string Provider, long Epoch);
}
