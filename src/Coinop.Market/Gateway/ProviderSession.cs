using System.Buffers;
using System.Collections.Concurrent;
using System.Collections.Frozen;
using System.Net.WebSockets;
using Coinop.Core.Pricing;
using Coinop.Core.Protocol;
using Coinop.Core.Routing;
using Coinop.Runtime.Links;
using Microsoft.Extensions.Logging;

namespace Coinop.Market.Gateway;

/// <summary>
/// One authenticated provider connection: a <see cref="FrameWriter"/> (frames sent in order, by the caller when the
/// link is idle, else from a bounded queue), a reader loop, the provider's capabilities and load, its routing state (in-flight count, peak-EWMA latency, parking)
/// and the job attempts it is running. Nothing the provider sends can grow memory without bound: frames are
/// size-limited, job output is bounded by each job's window, and any protocol violation closes the socket.
/// </summary>
public sealed class ProviderSession : IRoutableProvider, IAsyncDisposable
{
    public const int MaxBinaryPayload = 64 * 1024;
    private const int OutgoingQueueFrames = 1024;
    private const int MaxModels = 1024;
    private const int MaxNameLength = 256;

    private readonly WebSocket _socket;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly IProviderWorkloads? _workloads;
    private readonly int _maxTextFrame;
    private readonly FrameWriter _frames;
    private readonly ConcurrentDictionary<Guid, IJobAttemptSink> _jobs = new();
    private readonly CancellationTokenSource _closed = new();
    private readonly Lock _routingGate = new();
    private readonly PeakEwma _latency;
    private readonly Parking _parking;
    private volatile CapabilitiesMessage? _capabilities;
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
        _socket = socket;
        _time = time;
        _maxTextFrame = maxTextFrame;
        _logger = logger;
        _workloads = workloads;
        _latency = new PeakEwma(time, TimeSpan.FromSeconds(10), initialMs: 100);
        _parking = new Parking(time);
        _frames = new FrameWriter(OutgoingQueueFrames, SendFrameAsync, socket.Abort);
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
    public async ValueTask<bool> StartJobAsync(IJobAttemptSink sink, JobMessage job, CancellationToken cancellationToken)
    {
        if (_closed.IsCancellationRequested)
        {
            return false;
        }

        _jobs[sink.JobId] = sink;
        if (await _frames.SendAsync(OutgoingFrame.Text(ProtocolJson.Serialize(job)), cancellationToken))
        {
            return true;
        }

        _jobs.TryRemove(new KeyValuePair<Guid, IJobAttemptSink>(sink.JobId, sink));
        cancellationToken.ThrowIfCancellationRequested();
        return false;
    }

    /// <summary>Forgets the attempt: later frames for it are dropped.</summary>
    public void EndJob(IJobAttemptSink sink) => _jobs.TryRemove(new KeyValuePair<Guid, IJobAttemptSink>(sink.JobId, sink));

    public void GrantWindow(IJobAttemptSink sink, int bytes) => TrySend(new JobWindow(sink.JobId, bytes));

    /// <summary>Queues a small control frame without waiting; false when the queue is full or the session closing.</summary>
    public bool TrySend(ProtocolMessage message) => _frames.TrySend(OutgoingFrame.Text(ProtocolJson.Serialize(message)));

    /// <summary>Stops the job at the provider and forgets it.</summary>
    public void CancelJob(IJobAttemptSink sink, string reason)
    {
        if (_jobs.TryRemove(new KeyValuePair<Guid, IJobAttemptSink>(sink.JobId, sink)))
        {
            TrySend(new JobCancel(sink.JobId, reason));
        }
    }

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

        _frames.TrySend(OutgoingFrame.Close((WebSocketCloseStatus)status, reason));
        _frames.Complete();
        FailAllJobs(reason);
        FiguresChanged(); // no longer accepting
    }

    /// <summary>Tells the provider to stop every job (market shutting down), then closes the socket.</summary>
    public void CloseForDrain()
    {
        foreach (var (jobId, _) in _jobs)
        {
            TrySend(new JobCancel(jobId, "market_draining"));
        }

        Close(CloseCodes.GoingAway, CloseCodes.DrainDeploy);
    }

    /// <summary>Runs the writer and the reader until the socket closes. Returns how the session ended, for logs.</summary>
    public async Task<string> RunAsync(CancellationToken cancellationToken)
    {
        using var link = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _closed.Token);
        var writer = WriteLoopAsync();
        string ended;
        try
        {
            ended = await ReadLoopAsync(link.Token);
        }
        catch (OperationCanceledException)
        {
            ended = "closed";
        }
        catch (WebSocketException ex)
        {
            ended = "socket error: " + ex.WebSocketErrorCode;
        }

        if (ended != "closed" && ended.StartsWith("protocol", StringComparison.Ordinal))
        {
            Close(CloseCodes.ProtocolError, "protocol error");
        }
        else
        {
            Close((int)WebSocketCloseStatus.NormalClosure, "bye");
        }

        try
        {
            await writer.WaitAsync(TimeSpan.FromSeconds(5), _time, CancellationToken.None);
        }
        catch (TimeoutException)
        {
            await _closed.CancelAsync(); // a peer that stopped reading must not hold the writer forever
            await writer;
        }

        await _closed.CancelAsync();
        FailAllJobs("provider_disconnected");
        return ended;
    }

    private async Task<string> ReadLoopAsync(CancellationToken cancellationToken)
    {
        byte[]? buffer = null;
        try
        {
            while (true)
            {
                // An idle link holds no receive buffer (10,000 idle providers would pin 160 MB): a zero-byte read waits for
                // the next message and a buffer is rented once data is there, kept while messages follow back to back.
                var waiting = _socket.ReceiveAsync(Memory<byte>.Empty, cancellationToken);
                if (!waiting.IsCompleted && buffer is not null)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = null;
                }

                var result = await waiting;
                buffer ??= ArrayPool<byte>.Shared.Rent(16 * 1024);
                var length = 0;
                while (!result.EndOfMessage)
                {
                    if (length == buffer.Length)
                    {
                        var limit = _maxTextFrame + ChunkFrame.HeaderSize;
                        if (buffer.Length >= limit)
                        {
                            return "protocol: frame too large";
                        }

                        var bigger = ArrayPool<byte>.Shared.Rent(Math.Min(buffer.Length * 2, limit));
                        buffer.AsSpan(0, length).CopyTo(bigger);
                        ArrayPool<byte>.Shared.Return(buffer);
                        buffer = bigger;
                    }

                    result = await _socket.ReceiveAsync(buffer.AsMemory(length), cancellationToken);
                    length += result.Count;
                    if (result.MessageType == WebSocketMessageType.Binary && length > MaxBinaryPayload + ChunkFrame.HeaderSize)
                    {
                        return "protocol: binary frame too large";
                    }
                }

                if (result.MessageType == WebSocketMessageType.Close)
                {
                    return "closed by provider";
                }

                Touch();
                var error = result.MessageType == WebSocketMessageType.Binary
                    ? OnBinary(buffer.AsSpan(0, length))
                    : OnText(buffer.AsSpan(0, length));
                if (error is not null)
                {
                    return "protocol: " + error;
                }

                if (buffer.Length > 64 * 1024)
                {
                    // A large text frame (a big capabilities list) should not pin a large buffer for the session's life.
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = null;
                }
            }
        }
        finally
        {
            if (buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
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

        // Unknown jobs and stale fences are dropped silently: a provider that lost a job may still be sending.
        if (_jobs.TryGetValue(jobId, out var sink) && sink.Fence == fence && !sink.OnChunk(frame[ChunkFrame.HeaderSize..]))
        {
            if (_jobs.TryRemove(new KeyValuePair<Guid, IJobAttemptSink>(jobId, sink)))
            {
                TrySend(new JobCancel(jobId, "window_overrun"));
                sink.OnLost("window_overrun");
            }
        }

        return null;
    }

    private string? OnText(ReadOnlySpan<byte> frame)
    {
        var message = ProtocolJson.TryDeserialize(frame);
        switch (message)
        {
            case CapabilitiesMessage capabilities:
                return Apply(capabilities);
            case HeartbeatMessage heartbeat when heartbeat.Load is not null:
                if (!heartbeat.Load.Equals(_load))
                {
                    _load = heartbeat.Load;
                    FiguresChanged(); // an idle provider's load is the same every time: no write to publish
                }

                HeartbeatReceived?.Invoke(this);
                return null;
            case JobDone done when done.Usage is not null:
                if (_jobs.TryGetValue(done.JobId, out var finished) && finished.Fence == done.Fence
                    && _jobs.TryRemove(new KeyValuePair<Guid, IJobAttemptSink>(done.JobId, finished)))
                {
                    finished.OnDone(done);
                }

                return null;
            case JobError failed when failed.Code is not null:
                if (_jobs.TryGetValue(failed.JobId, out var sink) && sink.Fence == failed.Fence
                    && _jobs.TryRemove(new KeyValuePair<Guid, IJobAttemptSink>(failed.JobId, sink)))
                {
                    sink.OnError(failed);
                }

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

    private string? Apply(CapabilitiesMessage capabilities)
    {
        if (capabilities.Models is null || capabilities.Models.Count > MaxModels || capabilities.MaxConcurrent < 1)
        {
            return "invalid capabilities";
        }

        var offers = new Dictionary<string, ModelOffer>(capabilities.Models.Count, StringComparer.Ordinal);
        foreach (var offer in capabilities.Models)
        {
            if (offer is null || string.IsNullOrEmpty(offer.Model) || offer.Model.Length > MaxNameLength
                || offer.InputMsatPerMtok < 0 || offer.OutputMsatPerMtok < 0 || offer.MaxConcurrent < 0)
            {
                return "invalid model offer";
            }

            offers[offer.Model] = offer;
        }

        if (capabilities.Workloads is { } workloads && Problem(workloads) is { } problem)
        {
            return problem;
        }

        _offers = offers.ToFrozenDictionary(StringComparer.Ordinal);
        _capabilities = capabilities;
        FiguresChanged();
        OfferChanges.Changed();
        GatewayLog.CapabilitiesReceived(_logger, ProviderId, offers.Count, capabilities.MaxConcurrent);
        return capabilities.Workloads is not null ? _workloads?.OnCapabilities(this) : null;
    }

    private static string? Problem(WorkloadCapacity w) =>
        !double.IsFinite(w.CpuCores) || w.CpuCores <= 0 || w.MemoryMb <= 0 || w.CpuMsatPerCoreSecond is < 0 or > WorkloadPrice.MaxRate
        || w.MemoryMsatPerGbSecond is < 0 or > WorkloadPrice.MaxRate || string.IsNullOrEmpty(w.Isolation) || w.Isolation.Length > MaxNameLength
        || string.IsNullOrEmpty(w.Incarnation) || w.Incarnation.Length > MaxNameLength
        || !IsBase64Of(w.SealingKey, 32) || !IsBase64Of(w.SealingKeySignature, 64)
            ? "invalid workload capacity"
            : null;

    private static bool IsBase64Of(string? text, int bytes) =>
        text is not null && System.Buffers.Text.Base64.IsValid(text, out var decoded) && decoded == bytes;

    private async Task WriteLoopAsync()
    {
        try
        {
            await _frames.RunAsync();
        }
        finally
        {
            // Once our close frame is out (or could not be sent), a silent peer must not keep the reader waiting.
            _ = CancelReaderAfterAsync(TimeSpan.FromSeconds(5));
        }
    }

    private async ValueTask SendFrameAsync(OutgoingFrame frame)
    {
        if (frame.CloseStatus is { } status)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2), _time);
            if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                await _socket.CloseOutputAsync(status, frame.CloseReason, timeout.Token);
            }

            return;
        }

        await _socket.SendAsync(frame.Payload, frame.Type, endOfMessage: true, _closed.Token);
    }

    private async Task CancelReaderAfterAsync(TimeSpan delay)
    {
        try
        {
            await Task.Delay(delay, _time, _closed.Token);
            await _closed.CancelAsync();
        }
        catch (OperationCanceledException)
        {
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private void FailAllJobs(string reason)
    {
        foreach (var (jobId, sink) in _jobs)
        {
            if (_jobs.TryRemove(new KeyValuePair<Guid, IJobAttemptSink>(jobId, sink)))
            {
                sink.OnLost(reason);
            }
        }
    }

    private void Touch() => Interlocked.Exchange(ref _lastSeenUnixMs, _time.GetUtcNow().ToUnixTimeMilliseconds());

    public ValueTask DisposeAsync()
    {
        _closed.Dispose();
        return ValueTask.CompletedTask;
    }
}
