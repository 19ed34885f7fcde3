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
/// <para>Connected providers share one timer, set for the earliest deadline in a queue: a heartbeat only moves its
/// provider's deadline, and an entry whose deadline moved is put back in the queue when its old one comes. So 10,000
/// providers cost one timer and a few queue operations a second, not 10,000 timers the runtime scans; deadlines are
/// taken a slot at a time (see <see cref="ArmTimer"/>), so that timer wakes at most once a second.</para>
/// </summary>
public sealed class ProviderLiveness : IHostedService, IDisposable
{
    private readonly TimeProvider _time;
    private readonly HeartbeatTimings _timings;
    private readonly ProviderDirectory _directory;
    private readonly IProviderLinks _links;
    private readonly ILogger<ProviderLiveness> _logger;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly PriorityQueue<Entry, long> _deadlines = new();
    private readonly ITimer _timer;
    private readonly long _slot;
    private readonly long _origin;
    private long _timerDue = long.MaxValue;
    private int _goneQueued;

    public ProviderLiveness(TimeProvider time, HeartbeatTimings timings, ProviderDirectory directory, IProviderLinks links, ILogger<ProviderLiveness> logger)
    {
        _time = time;
        _timings = timings;
        _directory = directory;
        _links = links;
        _logger = logger;
        _timer = _time.CreateTimer(_ => OnDeadline(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _slot = Math.Min(TimeSpan.TicksPerSecond, _timings.Grace.Ticks / 10);
        _origin = time.GetTimestamp();
    }

    /// <summary>The TTL handed to providers now: it grows with the number of connected providers.</summary>
    public TimeSpan CurrentTtl => _timings.TtlFor(_directory.Count);

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
        var leftOver = await _links.LeftOverAsync(cancellationToken);
        lock (_gate)
        {
            foreach (var (id, epoch) in leftOver)
            {
                if (!_entries.ContainsKey(id))
                {
                    var entry = new Entry(ProviderLivenessState.PresumedOnline, null, epoch);
                    entry.Timer = _time.CreateTimer(_ => FailoverExpired(id), null, _timings.FailoverTtl, Timeout.InfiniteTimeSpan);
                    _entries[id] = entry;
                }
            }
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>The session authenticated: online, silent after <paramref name="ttl"/> + grace without a heartbeat.</summary>
    public void Connected(ProviderSession session, TimeSpan ttl)
    {
        var entry = new Entry(ProviderLivenessState.Online, session, session.LinkEpoch) { Deadline = DeadlineAfter(ttl) };
        lock (_gate)
        {
            if (_entries.Remove(session.ProviderId, out var previous))
            {
                previous.Timer?.Dispose();
                Forget(previous);
            }

            _entries[session.ProviderId] = entry;
            _deadlines.Enqueue(entry, entry.Deadline);
            ArmTimer();
        }
    }

    /// <summary>A heartbeat arrived: the deadline moves to <paramref name="ttl"/> + grace from now.</summary>
    public void Beat(ProviderSession session, TimeSpan ttl)
    {
        var deadline = DeadlineAfter(ttl);
        lock (_gate)
        {
            if (_entries.TryGetValue(session.ProviderId, out var e) && ReferenceEquals(e.Session, session))
            {
                e.Deadline = deadline; // its place in the queue stays: when that comes, it is put back at this one
            }
        }
    }

    private long DeadlineAfter(TimeSpan ttl) => Now() + _timings.DeadlineAfter(ttl).Ticks;

    /// <summary>Ticks on the monotonic clock since this started: deadlines must not move when the wall clock is stepped.</summary>
    private long Now() => _time.GetElapsedTime(_origin).Ticks;

    /// <summary>The earliest queued deadline came: sessions past theirs are silent, the others go back in at their new one.</summary>
    private void OnDeadline()
    {
        List<ProviderSession>? silent = null;
        lock (_gate)
        {
            _timerDue = long.MaxValue;
            var now = Now();
            while (_deadlines.TryPeek(out var entry, out var queuedAt) && queuedAt <= now)
            {
                _deadlines.Dequeue();
                if (entry.Gone)
                {
                    _goneQueued--;
                    continue;
                }

                if (entry.Deadline > now)
                {
                    _deadlines.Enqueue(entry, entry.Deadline);
                }
                else
                {
                    entry.Gone = true; // out of the queue already
                    (silent ??= []).Add(entry.Session!);
                }
            }

            ArmTimer();
        }

        foreach (var session in silent ?? [])
        {
            Silent(session);
        }
    }

    /// <summary>
    /// Under the gate: a disconnected entry keeps its place in the queue until its deadline (at most TTL + grace); once
    /// such entries outnumber the live ones the queue is rebuilt, so providers that connect and leave quickly cannot
    /// grow it.
    /// </summary>
    private void Forget(Entry entry)
    {
        if (entry.Gone || entry.State != ProviderLivenessState.Online)
        {
            return;
        }

        entry.Gone = true;
        if (++_goneQueued > _deadlines.Count / 2 + 64)
        {
            var live = _deadlines.UnorderedItems.Where(i => !i.Element.Gone).ToList();
            _deadlines.Clear();
            _deadlines.EnqueueRange(live);
            _goneQueued = 0;
        }
    }

    /// <summary>
    /// Under the gate: the timer fires at the earliest queued deadline (changed only when that moved earlier or passed),
    /// rounded up to a whole <see cref="_slot"/>: 10,000 providers' deadlines come ~50 times a second, and one firing per
    /// slot takes all that fell in it instead of a timer wake-up each. A silent provider is closed at most a slot (a tenth
    /// of the grace, at most a second) after its deadline.
    /// </summary>
    private void ArmTimer()
    {
        if (!_deadlines.TryPeek(out _, out var next))
        {
            return;
        }

        if (_slot > 0)
        {
            next = (next / _slot + (next % _slot == 0 ? 0 : 1)) * _slot;
        }

        if (next >= _timerDue)
        {
            return;
        }

        _timerDue = next;
        var due = TimeSpan.FromTicks(Math.Max(0, next - Now()));
        _timer.Change(due, Timeout.InfiniteTimeSpan);
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
            Forget(e);
            _entries.Remove(session.ProviderId);
        }

        if (!marketStopping)
        {
            MarkOfflineInStore(session.ProviderId, session.LinkEpoch);
        }
    }

    private void Silent(ProviderSession session)
    {
        GatewayLog.ProviderSilent(_logger, session.ProviderId);
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

        GatewayLog.ProviderNotBack(_logger, providerId);
        MarkOfflineInStore(providerId, epoch);
    }

    /// <summary>Closes the link of that epoch; if the provider linked again since (here or on another node) nothing changes.</summary>
    private void MarkOfflineInStore(string providerId, long epoch) => _ = Task.Run(async () =>
    {
        try
        {
            await _links.UnlinkAsync(providerId, epoch, CancellationToken.None);
        }
        catch (Exception ex)
        {
            GatewayLog.StoreUpdateFailed(_logger, providerId, ex);
        }
    });

    public void Dispose()
    {
        _timer.Dispose();
        lock (_gate)
        {
            foreach (var e in _entries.Values)
            {
                e.Timer?.Dispose();
            }

            _entries.Clear();
            _deadlines.Clear();
        }
    }

    private sealed class Entry(ProviderLivenessState state, ProviderSession? session, long epoch)
    {
        public ProviderLivenessState State { get; } = state;

        public ProviderSession? Session { get; } = session;

        /// <summary>The link epoch the entry stands for (closing the link is fenced on it).</summary>
        public long Epoch { get; } = epoch;

        /// <summary>The failover timer of a provider presumed online (connected ones share the liveness timer).</summary>
        public ITimer? Timer { get; set; }

        /// <summary>Monotonic ticks (see <see cref="Now"/>) after which a connected provider is silent.</summary>
        public long Deadline { get; set; }

        /// <summary>Disconnected or replaced: its place in the deadline queue is skipped.</summary>
        public bool Gone { get; set; }
    }
}
