using System.Collections.Concurrent;

namespace Coinop.Market.Gateway;

/// <summary>
/// The providers connected to this market node. Routing reads <see cref="Snapshot"/>, a copy-on-write array,
/// so picking a provider takes no lock; connects and disconnects (rare) rebuild it under a lock. Sessions whose routing
/// figures changed are queued for <c>Cluster.LinkPublisher</c> (<see cref="TakeChanged"/>).
/// </summary>
public sealed class ProviderDirectory
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, ProviderSession> _byId = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<ProviderSession> _changed = new();
    private readonly Action<ProviderSession> _enqueueChanged;
    private ProviderSession[] _snapshot = [];

    public ProviderDirectory() => _enqueueChanged = _changed.Enqueue;

    /// <summary>Every connected session (capabilities or not); never mutated, replaced as a whole.</summary>
    public ProviderSession[] Snapshot => Volatile.Read(ref _snapshot);

    public int Count => Snapshot.Length;

    /// <summary>Adds the session; returns the session of the same provider it replaces, if any.</summary>
    public ProviderSession? Register(ProviderSession session)
    {
        lock (_gate)
        {
            _byId.TryGetValue(session.ProviderId, out var previous);
            _byId[session.ProviderId] = session;
            Volatile.Write(ref _snapshot, [.. _byId.Values]);
            session.ObserveFigures(_enqueueChanged);
            return previous;
        }
    }

    /// <summary>Removes the session unless a newer one of the same provider already replaced it. True when removed.</summary>
    public bool Remove(ProviderSession session)
    {
        lock (_gate)
        {
            if (!_byId.TryGetValue(session.ProviderId, out var current) || !ReferenceEquals(current, session))
            {
                return false;
            }

            _byId.Remove(session.ProviderId);
            Volatile.Write(ref _snapshot, [.. _byId.Values]);
            return true;
        }
    }

    /// <summary>
    /// Takes the sessions whose published figures may have changed since they were last taken (each at most once per
    /// change, in no particular order; a session may have left the directory since). Idle sessions are never listed.
    /// </summary>
    public void TakeChanged(List<ProviderSession> into)
    {
        while (_changed.TryDequeue(out var session))
        {
            session.TakeFiguresChange();
            into.Add(session);
        }
    }

    public ProviderSession? Find(string providerId)
    {
        lock (_gate)
        {
            return _byId.GetValueOrDefault(providerId);
        }
    }
}
