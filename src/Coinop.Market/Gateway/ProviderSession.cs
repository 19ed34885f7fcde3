using System.Collections.Frozen;
using System.Net.WebSockets;
using Coinop.Core.Protocol;
using Coinop.Core.Routing;
using Microsoft.Extensions.Logging;

namespace Coinop.Market.Gateway;

/// <summary>
/// One authenticated provider connection as the router sees it: the provider's capabilities and load, its routing
/// state (in-flight count, peak-EWMA latency, parking) and what each message it sends means. The transport is its
/// <see cref="ProviderSocket"/> and the jobs it runs are its <see cref="JobAttempts"/>. Nothing the provider sends can
/// grow memory without bound: frames are size-limited, job output is bounded by each job's window, and any protocol
/// violation closes the socket.
/// </summary>
public sealed class ProviderSession : IRoutableProvider, IAsyncDisposable
{
    private readonly ProviderSocket _socket;
    private readonly JobAttempts _jobs;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly IProviderWorkloads? _workloads;
    private readonly Lock _routingGate = new();
    private readonly PeakEwma _latency;
    private readonly Parking _parking;
    private volatile CapabilitiesMessage? _capabilities;
    private byte[]? _capabilitiesFrame; // the frame _capabilities came in: read and written only by the reader loop
    private volatile FrozenDictionary<string, ModelOffer> _offers = FrozenDictionary<string, ModelOffer>.Empty;
    private volatile LoadFigures _load = LoadFigures.Idle;
    private volatile bool _draining;
    private int _inFlight;
    private int _closeRequested;
    private long _lastSeenUnixMs;
    private Action<ProviderSession>? _changeSink;
    private int _changeQueued;
    private long _linkEpoch;

    public ProviderSession(string providerId, string name, WebSocket socket, TimeProvider time, int maxTextFrame, ILogger logger,
        IProviderWorkloads? workloads = null)
    {
        ProviderId = providerId;
        Name = name;
        _socket = new ProviderSocket(socket, time, maxTextFrame);
        _jobs = new JobAttempts(_socket);
        _time = time;
        _logger = logger;
        _workloads = workloads;
        _latency = new PeakEwma(time, TimeSpan.FromSeconds(10), initialMs: 100);
        _parking = new Parking(time);
        ConnectedAt = time.GetUtcNow();
        Touch();
    }

    /// <summary>When this connection was authenticated (the provider's uptime on this node counts from here).</summary>
    public DateTimeOffset ConnectedAt { get; }

    public string ProviderId { get; }

    public string Name { get; }

    /// <summary>The fencing epoch of this link in the store (set once the link is recorded, before jobs are routed to it).</summary>
    public long LinkEpoch
    {
        get => Interlocked.Read(ref _linkEpoch);
        set
        {
            Interlocked.Exchange(ref _linkEpoch, value);
            FiguresChanged();
        }
    }

    /// <summary>Null until the provider sent its capabilities; nothing is routed to it before.</summary>
    public CapabilitiesMessage? Capabilities => _capabilities;

    /// <summary>The workload capacity the provider offers, once it sent capabilities with one.</summary>
    public WorkloadCapacity? WorkloadCapacity => _capabilities?.Workloads;

    public LoadFigures Load => _load;

    public int MaxConcurrent => _capabilities?.MaxConcurrent ?? 0;

    public bool Draining => _draining;

    public int InFlight => Volatile.Read(ref _inFlight);

    public DateTimeOffset LastSeen => DateTimeOffset.FromUnixTimeMilliseconds(Interlocked.Read(ref _lastSeenUnixMs));

    /// <summary>Raised on the reader loop when a heartbeat arrives, so liveness can push the silence deadline back.</summary>
    public event Action<ProviderSession>? HeartbeatReceived;

    public bool TryGetOffer(string model, out ModelOffer offer) => _offers.TryGetValue(model, out offer!);

    public IReadOnlyCollection<ModelOffer> Offers => _offers.Values;

    /// <summary>True when new jobs may go to this provider (capabilities known, not draining, not closing).</summary>
    public bool Accepting => _capabilities is not null && !_draining && Volatile.Read(ref _closeRequested) == 0;

    public bool IsParked
    {
        get
        {
            lock (_routingGate)
            {
                return _parking.IsParked;
            }
        }
    }

    public DateTimeOffset? ParkedUntil
    {
        get
        {
            lock (_routingGate)
            {
                return _parking.ParkedUntil;
            }
        }
    }

    public double LatencyEstimateMs
    {
        get
        {
            lock (_routingGate)
            {
                return _latency.EstimateMs;
            }
        }
    }

    /// <summary>Takes one of the provider's concurrency slots; false when it is at <c>max_concurrent</c>.</summary>
    public bool TryAcquireSlot()
    {
        var max = _capabilities?.MaxConcurrent ?? 0;
        while (true)
        {
            var current = Volatile.Read(ref _inFlight);
            if (current >= max)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref _inFlight, current + 1, current) == current)
            {
                FiguresChanged();
                return true;
            }
        }
    }

    public void ReleaseSlot()
    {
        Interlocked.Decrement(ref _inFlight);
        FiguresChanged();
    }

    public void RecordSuccess(double timeToFirstByteMs)
    {
        lock (_routingGate)
        {
            _latency.Observe(timeToFirstByteMs);
            _parking.RecordSuccess();
        }

        FiguresChanged();
    }

    /// <summary>The operator parks the provider until <paramref name="until"/> (a time already past un-parks it).</summary>
    public void ParkUntil(DateTimeOffset until)
    {
        lock (_routingGate)
        {
            _parking.ParkUntil(until);
        }

        FiguresChanged();
    }

    /// <returns>True when this failure parked the provider.</returns>
    public bool RecordFailure()
    {
        bool parked;
        lock (_routingGate)
        {
            parked = _parking.RecordFailure();
        }

        FiguresChanged();
        return parked;
    }

    /// <summary>
    /// From now on <paramref name="sink"/> is called (once until <see cref="TakeFiguresChange"/>) whenever a figure
    /// other nodes route by may have changed: capabilities, accepting, jobs in flight, latency, parking, load, epoch. So
    /// publishing costs nothing while providers are idle, however many are linked. Called once now.
    /// </summary>
    internal void ObserveFigures(Action<ProviderSession> sink)
    {
        _changeSink = sink;
        Volatile.Write(ref _changeQueued, 0);
        FiguresChanged();
    }

    /// <summary>The observer takes the change it was told of; a change after this call tells it again.</summary>
    internal void TakeFiguresChange() => Volatile.Write(ref _changeQueued, 0);

    /// <summary>Tells the observer, unless it was told already and has not taken the change yet.</summary>
    internal void FiguresChanged()
    {
        if (_changeSink is { } sink && Volatile.Read(ref _changeQueued) == 0 && Interlocked.Exchange(ref _changeQueued, 1) == 0)
        {
            sink(this);
        }
    }

    /// <summary>Registers the attempt and queues its job frame. False when the session is closing.</summary>
    public ValueTask<bool> StartJobAsync(IJobAttemptSink sink, JobMessage job, CancellationToken cancellationToken) =>
        _jobs.StartAsync(sink, job, cancellationToken);

    /// <summary>Forgets the attempt: later frames for it are dropped.</summary>
    public void EndJob(IJobAttemptSink sink) => _jobs.End(sink);

    public void GrantWindow(IJobAttemptSink sink, int bytes) => TrySend(new JobWindow(sink.JobId, bytes));

    /// <summary>Queues a small control frame without waiting; false when the queue is full or the session closing.</summary>
    public bool TrySend(ProtocolMessage message) => _socket.TrySend(message);

    /// <summary>Stops the job at the provider and forgets it.</summary>
    public void CancelJob(IJobAttemptSink sink, string reason) => _jobs.Cancel(sink, reason);

    /// <summary>
    /// Closes the socket with <paramref name="status"/> after the frames already queued; every job attempt the
    /// session still holds is told the provider is lost.
    /// </summary>
    public void Close(int status, string reason)
    {
        if (Interlocked.Exchange(ref _closeRequested, 1) != 0)
        {
            return;
        }

        _socket.Close((WebSocketCloseStatus)status, reason);
        _jobs.LoseAll(reason);
        FiguresChanged(); // no longer accepting
    }

    /// <summary>Tells the provider to stop every job (market shutting down), then closes the socket.</summary>
    public void CloseForDrain()
    {
        _jobs.CancelAll("market_draining");
        Close(CloseCodes.GoingAway, CloseCodes.DrainDeploy);
    }

    /// <summary>Runs the writer and the reader until the socket closes. Returns how the session ended, for logs.</summary>
    public async Task<string> RunAsync(CancellationToken cancellationToken)
    {
        _socket.StartWriter();
        var ended = await _socket.ReceiveAsync(this, cancellationToken);
        if (ended != "closed" && ended.StartsWith("protocol", StringComparison.Ordinal))
        {
            Close(CloseCodes.ProtocolError, "protocol error");
        }
        else
        {
            Close((int)WebSocketCloseStatus.NormalClosure, "bye");
        }

        await _socket.EndAsync();
        _jobs.LoseAll("provider_disconnected");
        return ended;
    }

    /// <summary>One whole message from the provider, on the socket's reader loop. Returns the protocol violation it is, if any.</summary>
    internal string? OnMessage(WebSocketMessageType type, ReadOnlySpan<byte> frame)
    {
        Touch();
        return type == WebSocketMessageType.Binary ? OnBinary(frame) : OnText(frame);
    }

    private string? OnBinary(ReadOnlySpan<byte> frame)
    {
        if (!ChunkFrame.TryReadHeader(frame, out var kind, out var jobId, out var fence))
        {
            return "bad binary frame";
        }

        if (kind != ChunkFrame.KindJobChunk)
        {
            return _workloads is null
                ? "workload frame on a market without workloads"
                : _workloads.OnChunk(this, kind, jobId, fence, frame[ChunkFrame.HeaderSize..]);
        }

        _jobs.OnChunk(jobId, fence, frame[ChunkFrame.HeaderSize..]);
        return null;
    }

    private string? OnText(ReadOnlySpan<byte> frame)
    {
        if (_capabilitiesFrame is { } applied && frame.SequenceEqual(applied))
        {
            // The capabilities in force, sent again (agents repeat them; a hostile one floods them): nothing changed, so
            // nothing is parsed, checked, published, rebuilt or queued for the workload supervisor (which heard of this
            // provider when they were applied). A length compare for any other frame.
            return null;
        }

        // Every job ends with a job_done: its usual shape is read without the general deserializer.
        var message = (ProtocolMessage?)JobDoneFrame.TryRead(frame) ?? ProtocolJson.TryDeserialize(frame);
        switch (message)
        {
            case CapabilitiesMessage capabilities:
                return Apply(capabilities, frame);
            case HeartbeatMessage heartbeat when heartbeat.Load is not null:
                var load = LoadCheck.Bounded(heartbeat.Load); // shown and summed over providers: within what the figures can mean
                if (!load.Equals(_load))
                {
                    _load = load;
                    FiguresChanged(); // an idle provider's load is the same every time: no write to publish
                }

                HeartbeatReceived?.Invoke(this);
                return null;
            case JobDone done when done.Usage is not null:
                _jobs.OnDone(done);
                return null;
            case JobError failed when failed.Code is not null:
                _jobs.OnError(JobErrorCheck.Bounded(failed)); // its message reaches the consumer
                return null;
            case DrainNotice:
                _draining = true;
                FiguresChanged();
                OfferChanges.Changed(); // no longer accepting: the offer index (and /v1/models) drops it
                GatewayLog.ProviderDraining(_logger, ProviderId);
                return null;
            case WorkloadHeartbeat or WorkloadExited or WorkloadLost or WorkloadUsage or WorkloadReceipt or WorkloadCheckpoint when _workloads is not null:
                return _capabilities?.Workloads is null ? "workload message before workload capabilities" : _workloads.OnMessage(this, message!);
            case null:
                return "unparseable text frame";
            default:
                return "unexpected message";
        }
    }

    private string? Apply(CapabilitiesMessage capabilities, ReadOnlySpan<byte> frame)
    {
        if (CapabilitiesCheck.Problem(capabilities, out var offers) is { } problem)
        {
            return problem;
        }

        _offers = offers;
        _capabilities = capabilities;
        _capabilitiesFrame = frame.ToArray();
        FiguresChanged();
        OfferChanges.Changed();
        GatewayLog.CapabilitiesReceived(_logger, ProviderId, offers.Count, capabilities.MaxConcurrent);
        return capabilities.Workloads is not null ? _workloads?.OnCapabilities(this) : null;
    }

    private void Touch() => Interlocked.Exchange(ref _lastSeenUnixMs, _time.GetUtcNow().ToUnixTimeMilliseconds());

    public ValueTask DisposeAsync()
    {
        _socket.Dispose();
        return ValueTask.CompletedTask;
    }
}
