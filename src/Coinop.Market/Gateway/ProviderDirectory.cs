namespace Coinop.Market.Gateway;

/// <summary>
/// The providers connected to this market node. Routing reads <see cref="Snapshot"/>, a copy-on-write array,
/// so picking a provider takes no lock; connects and disconnects (rare) rebuild it under a lock.
/// </summary>
public sealed class ProviderDirectory
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, ProviderSession> _byId = new(StringComparer.Ordinal);
    private ProviderSession[] _snapshot = [];

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

    public ProviderSession? Find(string providerId)
    {
        lock (_gate)
        {
            return _byId.GetValueOrDefault(providerId);
        }
    }
}
