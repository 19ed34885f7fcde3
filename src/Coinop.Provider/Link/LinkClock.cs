namespace Coinop.Provider.Link;

/// <summary>What the link should do next.</summary>
public enum LinkDue
{
    /// <summary>Nothing yet; check again after the returned wait.</summary>
    Nothing,

    /// <summary>Send a heartbeat now.</summary>
    Heartbeat,

    /// <summary>No frame arrived for TTL + grace: the link is dead.</summary>
    Dead,
}

/// <summary>
/// Heartbeat and liveness timing of one market session: a heartbeat every half TTL, and the link is dead when
/// nothing arrived from the market for TTL + grace. The market may change the TTL with every acknowledgement.
/// </summary>
public sealed class LinkClock(TimeProvider time, TimeSpan grace)
{
    private readonly Lock _gate = new();
    private TimeSpan _ttl;
    private long _lastFrame;
    private long _lastHeartbeat;

    public TimeSpan Ttl
    {
        get
        {
            lock (_gate)
            {
                return _ttl;
            }
        }
    }

    /// <summary>Authenticated with a first TTL; the first heartbeat is due half a TTL from now.</summary>
    public void Start(TimeSpan ttl)
    {
        lock (_gate)
        {
            _ttl = ttl;
            _lastFrame = _lastHeartbeat = time.GetTimestamp();
        }
    }

    /// <summary>Any frame from the market proves the link alive.</summary>
    public void FrameReceived()
    {
        lock (_gate)
        {
            _lastFrame = time.GetTimestamp();
        }
    }

    public void TtlChanged(TimeSpan ttl)
    {
        lock (_gate)
        {
            _ttl = ttl;
        }
    }

    public void HeartbeatSent()
    {
        lock (_gate)
        {
            _lastHeartbeat = time.GetTimestamp();
        }
    }

    /// <summary>What is due now, and otherwise how long until something may be.</summary>
    public LinkDue Next(out TimeSpan wait)
    {
        lock (_gate)
        {
            var silentFor = time.GetElapsedTime(_lastFrame);
            var untilDead = _ttl + grace - silentFor;
            if (untilDead <= TimeSpan.Zero)
            {
                wait = TimeSpan.Zero;
                return LinkDue.Dead;
            }

            var untilHeartbeat = _ttl / 2 - time.GetElapsedTime(_lastHeartbeat);
            if (untilHeartbeat <= TimeSpan.Zero)
            {
                wait = TimeSpan.Zero;
                return LinkDue.Heartbeat;
            }

            wait = untilDead < untilHeartbeat ? untilDead : untilHeartbeat;
            return LinkDue.Nothing;
        }
    }
}
