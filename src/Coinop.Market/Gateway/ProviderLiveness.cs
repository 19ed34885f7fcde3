using Coinop.Core.Heartbeats;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Coinop.Market.Gateway;

/// <summary>What the market believes about a provider being alive.</summary>
public enum ProviderLivenessState
{
    Offline,

    /// <summary>Connected, heartbeating within its TTL.</summary>
    Online,

    /// <summary>
    /// Online before this market node restarted and not reconnected yet: within the failover TTL nothing that
    /// depends on its liveness (its workloads, its leases) is decided, so a market restart is not a mass failure.
    /// </summary>
    PresumedOnline,
}

/// <summary>
/// Heartbeat deadlines and the online/offline record of providers. A connected provider is silent once TTL +
/// grace passes without a heartbeat (its socket is then closed with 4408); a closed socket is offline at once;
/// after a restart, providers the store says were online get the failover TTL to come back.
/// </summary>
public sealed class ProviderLiveness(
    TimeProvider time,
    HeartbeatTimings timings,
    ProviderDirectory directory,
    IProviderLinks links,
    ILogger<ProviderLiveness> logger) : IHostedService, IDisposable
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);

    /// <summary>The TTL handed to providers now: it grows with the number of connected providers.</summary>
    public TimeSpan CurrentTtl => timings.TtlFor(directory.Count);

    public ProviderLivenessState StateOf(string providerId)
    {
        lock (_gate)
        {
            return _entries.TryGetValue(providerId, out var e) ? e.State : ProviderLivenessState.Offline;
        }
    }

    /// <summary>Providers linked to this node before its restart are presumed alive for the failover TTL.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var leftOver = await links.LeftOverAsync(cancellationToken);
        lock (_gate)
        {
            foreach (var (id, epoch) in leftOver)
            {
                if (!_entries.ContainsKey(id))
                {
                    var entry = new Entry(ProviderLivenessState.PresumedOnline, null, epoch);
                    entry.Timer = time.CreateTimer(_ => FailoverExpired(id), null, timings.FailoverTtl, Timeout.InfiniteTimeSpan);
                    _entries[id] = entry;
                }
            }
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>The session authenticated: online, silent after <paramref name="ttl"/> + grace without a heartbeat.</summary>
    public void Connected(ProviderSession session, TimeSpan ttl)
    {
        var entry = new Entry(ProviderLivenessState.Online, session, session.LinkEpoch);
        entry.Timer = time.CreateTimer(_ => Silent(session), null, timings.DeadlineAfter(ttl), Timeout.InfiniteTimeSpan);
        lock (_gate)
        {
            if (_entries.Remove(session.ProviderId, out var previous))
            {
                previous.Timer?.Dispose();
            }

            _entries[session.ProviderId] = entry;
        }
    }

    /// <summary>A heartbeat arrived: the deadline moves to <paramref name="ttl"/> + grace from now.</summary>
    public void Beat(ProviderSession session, TimeSpan ttl)
    {
        lock (_gate)
        {
            if (_entries.TryGetValue(session.ProviderId, out var e) && ReferenceEquals(e.Session, session))
            {
                e.Timer?.Change(timings.DeadlineAfter(ttl), Timeout.InfiniteTimeSpan);
            }
        }
    }

    /// <summary>
    /// The socket closed: offline at once (unless a newer connection of the provider took over). When the market
    /// itself is stopping the store keeps the provider online, so the next start presumes it alive for the
    /// failover TTL instead of treating a deploy as a mass failure.
    /// </summary>
    public void Disconnected(ProviderSession session, bool marketStopping = false)
    {
        lock (_gate)
        {
            if (!_entries.TryGetValue(session.ProviderId, out var e) || !ReferenceEquals(e.Session, session))
            {
                return;
            }

            e.Timer?.Dispose();
            _entries.Remove(session.ProviderId);
        }

        if (!marketStopping)
        {
            MarkOfflineInStore(session.ProviderId, session.LinkEpoch);
        }
    }

    private void Silent(ProviderSession session)
    {
        GatewayLog.ProviderSilent(logger, session.ProviderId);
        session.Close(Core.Protocol.CloseCodes.HeartbeatTimeout, "heartbeat timeout");
        // Offline now, not when the close handshake ends: a silent peer may never answer it.
        Disconnected(session);
    }

    private void FailoverExpired(string providerId)
    {
        long epoch;
        lock (_gate)
        {
            if (!_entries.TryGetValue(providerId, out var e) || e.State != ProviderLivenessState.PresumedOnline)
            {
                return;
            }

            e.Timer?.Dispose();
            _entries.Remove(providerId);
            epoch = e.Epoch;
        }

        GatewayLog.ProviderNotBack(logger, providerId);
        MarkOfflineInStore(providerId, epoch);
    }

    /// <summary>Closes the link of that epoch; if the provider linked again since (here or on another node) nothing changes.</summary>
    private void MarkOfflineInStore(string providerId, long epoch) => _ = Task.Run(async () =>
    {
        try
        {
            await links.UnlinkAsync(providerId, epoch, CancellationToken.None);
        }
        catch (Exception ex)
        {
            GatewayLog.StoreUpdateFailed(logger, providerId, ex);
        }
    });

    public void Dispose()
    {
        lock (_gate)
        {
            foreach (var e in _entries.Values)
            {
                e.Timer?.Dispose();
            }

            _entries.Clear();
        }
    }

    private sealed class Entry(ProviderLivenessState state, ProviderSession? session, long epoch)
    {
        public ProviderLivenessState State { get; } = state;

        public ProviderSession? Session { get; } = session;

        /// <summary>The link epoch the entry stands for (closing the link is fenced on it).</summary>
        public long Epoch { get; } = epoch;

        public ITimer? Timer { get; set; }
    }
}
