using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using Coinop.Core.Identity;
using Coinop.Core.Protocol;
using Coinop.Provider.Backends;
using Coinop.Provider.Hosting;
using Coinop.Provider.Identity;
using Coinop.Provider.Jobs;
using Coinop.Provider.Workloads;
using Coinop.Runtime.Links;

namespace Coinop.Provider.Link;

/// <summary>
/// One connection to the market: dial, answer the challenge, send capabilities, then heartbeat, take jobs and
/// relay their output until the link ends. A <see cref="FrameWriter"/> owns the socket's send side: frames go out
/// in order, sent by the caller when the link is idle and queued for its writer loop otherwise.
/// </summary>
internal sealed class MarketSession : IDisposable, IWorkloadLink
{
    private const int MaxIncomingMessage = 64 * 1024 * 1024;
    private const int OutgoingCapacity = 256;

    /// <summary>
    /// The link's WebSocket keep-alive (an unsolicited pong), which only keeps NAT and load-balancer mappings open when
    /// heartbeats are far apart (every TTL/2: up to 300 s on a market with many providers); 120 s is half the shortest
    /// common idle timeout (4 min). ClientWebSocket's default of 30 s made these pongs two thirds of the frames a market
    /// with 10,000 idle providers receives (docs/benchmarks.md).
    /// </summary>
    internal static readonly TimeSpan KeepAliveInterval = TimeSpan.FromSeconds(120);

    private readonly AgentContext _agent;
    private readonly ClientWebSocket _socket = new();
    private readonly HttpMessageInvoker _dialer;
    private readonly FrameWriter _frames;
    private LinkStream? _link;
    private readonly ConcurrentDictionary<Guid, JobRun> _jobs = new();
    private readonly CancellationTokenSource _end = new();
    private readonly SemaphoreSlim _capabilitiesGate = new(1, 1);
    private readonly LinkClock _clock;
    private readonly TaskCompletionSource _finished = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private byte[] _receiveBuffer = new byte[16 * 1024];
    private ModelCatalog? _sentCatalog;
    private volatile bool _authenticated;
    private volatile string? _deadReason;
    private volatile IReadOnlyList<string>? _nodes;
    private volatile string? _workloadNode;

    public MarketSession(AgentContext agent, string marketUrl)
    {
        _agent = agent;
        MarketUrl = marketUrl;
        _clock = new LinkClock(agent.Time, agent.Options.LinkGrace);
        // The link's TCP connection is ours (a LinkStream) so frames sent together leave in one write.
        _dialer = new HttpMessageInvoker(new SocketsHttpHandler { ConnectCallback = DialAsync, AutomaticDecompression = DecompressionMethods.None });
        _frames = new FrameWriter(OutgoingCapacity, SendFrameAsync, _socket.Abort, new HeldWrites(this));
        _socket.Options.SetRequestHeader("User-Agent", "coinop-provider/" + agent.AgentVersion);
        _socket.Options.KeepAliveInterval = KeepAliveInterval;
    }

    public bool Authenticated => _authenticated;

    /// <summary>The market node this session dials.</summary>
    public string MarketUrl { get; }

    /// <summary>The market's nodes as the market last named them (null when it named none).</summary>
    public IReadOnlyList<string>? Nodes => _nodes;

    /// <summary>The node that supervises workloads, when the market named another one and this agent runs workloads: link there next.</summary>
    public string? WorkloadNode => _workloadNode;

    /// <summary>Completes when <see cref="RunAsync"/> has cleaned up.</summary>
    public Task Finished => _finished.Task;

    public async Task<SessionOutcome> RunAsync(CancellationToken stopping)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(stopping, _end.Token);
        var ct = linked.Token;
        var writer = Task.CompletedTask;
        var liveness = Task.CompletedTask;
        try
        {
            using (var handshake = new CancellationTokenSource(_agent.Options.HandshakeTimeout, _agent.Time))
            using (var handshakeLinked = CancellationTokenSource.CreateLinkedTokenSource(ct, handshake.Token))
            {
                try
                {
                    await _socket.ConnectAsync(ProviderOptions.ConnectUrlFor(MarketUrl), _dialer, handshakeLinked.Token);
                    writer = _frames.RunAsync();
                    var refused = await HandshakeAsync(handshakeLinked.Token);
                    if (refused is not null)
                    {
                        return refused;
                    }
                }
                catch (OperationCanceledException) when (handshake.IsCancellationRequested && !ct.IsCancellationRequested)
                {
                    return new SessionOutcome(false, false, $"no handshake within {_agent.Options.HandshakeTimeout.TotalSeconds:0.#}s");
                }
            }

            await _agent.Discovery.FirstPass.WaitAsync(ct);
            _agent.Discovery.OffersChanged += OnOffersChanged;
            await SendCapabilitiesAsync();
            _agent.Workloads?.Attach(this); // after capabilities: the market takes workload traffic only from then on
            liveness = LivenessLoopAsync(ct);
            return await ReadLoopAsync(ct);
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            return new SessionOutcome(_authenticated, true, "agent stopping");
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException or HttpRequestException or ObjectDisposedException)
        {
            return new SessionOutcome(_authenticated, false, _deadReason ?? Describe(ex));
        }
        finally
        {
            _agent.Workloads?.Detach(this);
            _agent.Discovery.OffersChanged -= OnOffersChanged;
            _end.Cancel();
            foreach (var job in _jobs.Values)
            {
                job.Cancel();
            }

            await Task.WhenAll(_jobs.Values.Select(j => j.Completion));
            await liveness;
            _frames.Complete();
            await writer;
            _socket.Abort();
            _finished.TrySetResult();
        }
    }

    /// <summary>Tells the market the provider is draining (it stops routing jobs here).</summary>
    public ValueTask<bool> AnnounceDrainAsync(TimeSpan deadline) =>
        SendAsync(OutgoingFrame.Text(ProtocolJson.Serialize(new DrainNotice((int)Math.Min(int.MaxValue, deadline.TotalMilliseconds)))));

    /// <summary>Stops every job still running, each with a job_error carrying <paramref name="reason"/>, and waits for them.</summary>
    public async Task<int> AbandonJobsAsync(string reason)
    {
        var jobs = _jobs.Values.ToList();
        foreach (var job in jobs)
        {
            job.Abort(reason);
        }

        await Task.WhenAll(jobs.Select(j => j.Completion));
        return jobs.Count;
    }

    /// <summary>Closes the link on purpose (queued after everything already sent) and waits for the session to end.</summary>
    public async Task CloseAsync(WebSocketCloseStatus status, string reason, TimeSpan timeout)
    {
        await SendAsync(OutgoingFrame.Close(status, reason));
        if (await Task.WhenAny(Finished, Task.Delay(timeout, _agent.Time)) != Finished)
        {
            _socket.Abort();
        }
    }

    /// <summary>
    /// Disposes the socket. The end token and the capabilities gate are left to the collector: a capabilities
    /// update started just before the end may still touch them, and neither holds a timer or a handle.
    /// </summary>
    public void Dispose()
    {
        _socket.Dispose();
        _dialer.Dispose();
    }

    private async ValueTask<Stream> DialAsync(SocketsHttpConnectionContext context, CancellationToken ct)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(context.DnsEndPoint, ct);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        var link = new LinkStream(new NetworkStream(socket, ownsSocket: true));
        _link = link;
        return link;
    }

    /// <returns>null when authenticated; otherwise why not.</returns>
    private async Task<SessionOutcome?> HandshakeAsync(CancellationToken ct)
    {
        var first = await ReceiveAsync(ct);
        if (first is { Close: true })
        {
            return Closed(first);
        }

        if (ProtocolJson.TryDeserialize(first.Payload.Span) is not AuthChallenge challenge)
        {
            return new SessionOutcome(false, false, "the market did not open with an auth_challenge");
        }

        if (challenge.ProtocolVersion != ProviderAuth.ProtocolVersion)
        {
            ProviderLog.ProtocolMismatch(_agent.Logger, challenge.ProtocolVersion, ProviderAuth.ProtocolVersion);
        }

        byte[] nonce;
        try
        {
            nonce = Convert.FromBase64String(challenge.Nonce);
        }
        catch (FormatException)
        {
            return new SessionOutcome(false, false, "the challenge nonce is not base64");
        }

        // Refuse before signing: a signature for another market id is what an impostor would replay there.
        var pinned = _agent.MarketPin.Pinned;
        if (!MarketPin.Allows(pinned, challenge.MarketId))
        {
            ProviderLog.MarketIdChanged(_agent.Logger, MarketUrl, challenge.MarketId, pinned!, _agent.MarketPin.Path);
            return new SessionOutcome(false, false, $"market id {challenge.MarketId} is not the pinned market {pinned}");
        }

        var identity = _agent.Identity;
        var answer = new AuthResponse(
            Convert.ToBase64String(identity.PublicKey),
            Convert.ToBase64String(identity.SignChallenge(challenge.MarketId, nonce)),
            _agent.AgentVersion,
            _agent.Options.Name,
            _agent.Options.EnrollmentCode);
        await SendAsync(OutgoingFrame.Text(ProtocolJson.Serialize(answer)), ct);

        var reply = await ReceiveAsync(ct);
        if (reply is { Close: true })
        {
            return Closed(reply);
        }

        switch (ProtocolJson.TryDeserialize(reply.Payload.Span))
        {
            case AuthOk ok:
                _agent.MarketPin.PinIfFirst(challenge.MarketId);
                _authenticated = true;
                _nodes = ok.Nodes;
                _clock.Start(TimeSpan.FromMilliseconds(Math.Max(1, ok.HeartbeatTtlMs)));
                ProviderLog.Authenticated(_agent.Logger, MarketUrl, ok.ProviderId, ok.HeartbeatTtlMs);
                return null;
            case AuthFailed failed:
                ProviderLog.AuthRefused(_agent.Logger, failed.Reason);
                return new SessionOutcome(false, false, "authentication refused: " + failed.Reason);
            default:
                return new SessionOutcome(false, false, "the market answered the handshake with an unexpected frame");
        }
    }

    private async Task<SessionOutcome> ReadLoopAsync(CancellationToken ct)
    {
        while (true)
        {
            var frame = await ReceiveAsync(ct);
            _clock.FrameReceived();
            if (frame.Close)
            {
                // Complete the close handshake; the writer sends it after anything already queued.
                await SendAsync(OutgoingFrame.Close(WebSocketCloseStatus.NormalClosure, ""), CancellationToken.None);
                return Closed(frame);
            }

            if (frame.Type != WebSocketMessageType.Text)
            {
                ProviderLog.UnknownFrame(_agent.Logger, frame.Payload.Length);
                continue;
            }

            var message = ProtocolJson.TryDeserialize(frame.Payload.Span);
            switch (message)
            {
                case JobMessage job:
                    await StartJobAsync(job);
                    break;
                case JobWindow window when _jobs.TryGetValue(window.JobId, out var run):
                    run.Window.Grant(window.Increment);
                    break;
                case JobCancel cancel when _jobs.TryGetValue(cancel.JobId, out var run):
                    run.Cancel();
                    break;
                case HeartbeatAck ack when ack.NextTtlMs > 0:
                    _clock.TtlChanged(TimeSpan.FromMilliseconds(ack.NextTtlMs));
                    break;
                case MarketNodes nodes when nodes.Nodes is not null:
                    _nodes = nodes.Nodes;
                    if (nodes.Workloads is { } workloadNode && _agent.Workloads is not null)
                    {
                        _workloadNode = workloadNode;
                    }

                    break;
                case WorkloadStart or WorkloadStop or WorkloadRelease or WorkloadAck when _agent.Workloads is { } workloads:
                    workloads.OnMessage(this, message!);
                    break;
                case JobWindow or JobCancel or HeartbeatAck:
                    break;
                default:
                    ProviderLog.UnknownFrame(_agent.Logger, frame.Payload.Length);
                    break;
            }
        }
    }

    private async Task StartJobAsync(JobMessage job)
    {
        string? refusal = null;
        string code = JobErrorCodes.OutOfCapacity;
        BackendEndpoint? backend = null;
        if (_agent.Draining)
        {
            refusal = "the provider is draining";
        }
        else if (!IsSafePath(job.Path))
        {
            (code, refusal) = (JobErrorCodes.InvalidRequest, $"'{job.Path}' is not an API path this provider relays");
        }
        else if (!_agent.Discovery.Current.TryRoute(job.Model, out backend))
        {
            (code, refusal) = (JobErrorCodes.ModelNotLoaded, $"no backend of this provider serves '{job.Model}'");
        }
        else if (!_agent.TryTakeSlot())
        {
            refusal = _agent.Draining ? "the provider is draining" : $"the provider is at its limit of {_agent.Options.MaxConcurrent} concurrent jobs";
        }

        if (refusal is not null)
        {
            ProviderLog.JobRefused(_agent.Logger, job.JobId, job.Model, code, refusal);
            await SendAsync(OutgoingFrame.Text(ProtocolJson.Serialize(new JobError(job.JobId, job.Fence, code, refusal, false))));
            return;
        }

        var run = new JobRun(job, backend!, _agent, frame => SendAsync(frame), (first, then) => _frames.SendAsync(first, then), _end.Token);

        // A job id that is already running came back with a new fence: the old attempt is stale.
        if (_jobs.TryGetValue(job.JobId, out var stale))
        {
            stale.Cancel();
        }

        _jobs[job.JobId] = run;
        run.Start();
        _ = run.Completion.ContinueWith(
            _ =>
            {
                _jobs.TryRemove(new KeyValuePair<Guid, JobRun>(job.JobId, run));
                _agent.ReleaseSlot();
            },
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
    }

    private static bool IsSafePath(string path) =>
        path.Length is > 0 and < 128 && !path.Contains("..", StringComparison.Ordinal) && path[0] != '/'
        && path.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '/' or '_' or '-' or '.');

    private async Task LivenessLoopAsync(CancellationToken ct)
    {
        try
        {
            while (true)
            {
                switch (_clock.Next(out var wait))
                {
                    case LinkDue.Dead:
                        var silent = (long)(_clock.Ttl + _agent.Options.LinkGrace).TotalMilliseconds;
                        ProviderLog.LinkDead(_agent.Logger, silent);
                        _deadReason = $"no frame from the market for {silent} ms";
                        _socket.Abort();
                        return;
                    case LinkDue.Heartbeat:
                        _clock.HeartbeatSent();
                        await SendAsync(OutgoingFrame.Text(ProtocolJson.Serialize(new HeartbeatMessage(_agent.Load.Snapshot()))), ct);
                        break;
                    default:
                        // Re-check at least every second so a new TTL from an ack applies promptly.
                        await Task.Delay(wait < TimeSpan.FromSeconds(1) ? wait : TimeSpan.FromSeconds(1), _agent.Time, ct);
                        break;
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    private void OnOffersChanged(ModelCatalog catalog) => _ = SendCapabilitiesAsync();

    /// <summary>Sends the current offers unless the market already has them; serialised so updates arrive in order.</summary>
    private async Task SendCapabilitiesAsync()
    {
        try
        {
            await _capabilitiesGate.WaitAsync(_end.Token);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        try
        {
            var catalog = _agent.Discovery.Current;
            if (_sentCatalog is not null && _sentCatalog.SameOffersAs(catalog))
            {
                return;
            }

            var message = new CapabilitiesMessage(catalog.Offers, _agent.Options.MaxConcurrent, _agent.AgentVersion, _agent.Workloads?.Capacity);
            if (await SendAsync(OutgoingFrame.Text(ProtocolJson.Serialize(message))))
            {
                _sentCatalog = catalog;
                ProviderLog.CapabilitiesSent(_agent.Logger, catalog.Offers.Count, string.Join(", ", catalog.Offers.Select(o => $"{o.Model}@{o.Backend}")));
            }
        }
        finally
        {
            _capabilitiesGate.Release();
        }
    }

    ValueTask<bool> IWorkloadLink.SendAsync(ProtocolMessage message, CancellationToken cancellationToken) =>
        SendAsync(OutgoingFrame.Text(ProtocolJson.Serialize(message)), cancellationToken);

    async ValueTask<bool> IWorkloadLink.SendChunkAsync(byte kind, Guid id, long epoch, byte? lead, ReadOnlyMemory<byte> data, bool droppable,
        CancellationToken cancellationToken)
    {
        var length = ChunkFrame.HeaderSize + (lead is null ? 0 : 1) + data.Length;
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(length);
        ChunkFrame.WriteHeader(buffer, kind, id, epoch);
        var offset = ChunkFrame.HeaderSize;
        if (lead is { } b)
        {
            buffer[offset++] = b;
        }

        data.Span.CopyTo(buffer.AsSpan(offset));
        var frame = OutgoingFrame.Chunk(buffer, length);
        if (!droppable)
        {
            return await SendAsync(frame, cancellationToken);
        }

        // Output never holds up heartbeats: with the queue half full it is dropped instead.
        if (_frames.Queued < OutgoingCapacity / 2)
        {
            return _frames.TrySend(frame);
        }

        frame.Release();
        return false;
    }

    /// <summary>Sends or queues a frame; false (and the frame released) when the link is gone.</summary>
    private ValueTask<bool> SendAsync(OutgoingFrame frame, CancellationToken ct = default) => _frames.SendAsync(frame, ct);

    private async ValueTask SendFrameAsync(OutgoingFrame frame)
    {
        if (frame.CloseStatus is { } status)
        {
            if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                await _socket.CloseOutputAsync(status, frame.CloseReason, _end.Token);
            }

            return;
        }

        await _socket.SendAsync(frame.Payload, frame.Type, endOfMessage: true, _end.Token);
    }

    private async Task<Received> ReceiveAsync(CancellationToken ct)
    {
        if (_receiveBuffer.Length > 64 * 1024)
        {
            // One big job request must not pin a large buffer for the rest of the session. A new array, so the last
            // message's bytes are never overwritten under whoever still reads them.
            _receiveBuffer = new byte[16 * 1024];
        }

        var length = 0;
        while (true)
        {
            if (length == _receiveBuffer.Length)
            {
                if (_receiveBuffer.Length >= MaxIncomingMessage)
                {
                    await SendAsync(OutgoingFrame.Close(WebSocketCloseStatus.MessageTooBig, "message too big"), CancellationToken.None);
                    throw new WebSocketException($"the market sent a message over {MaxIncomingMessage} bytes");
                }

                Array.Resize(ref _receiveBuffer, _receiveBuffer.Length * 2);
            }

            var result = await _socket.ReceiveAsync(_receiveBuffer.AsMemory(length), ct);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                return new Received(WebSocketMessageType.Close, default, true, _socket.CloseStatus, _socket.CloseStatusDescription);
            }

            length += result.Count;
            if (result.EndOfMessage)
            {
                return new Received(result.MessageType, _receiveBuffer.AsMemory(0, length), false, null, null);
            }
        }
    }

    private SessionOutcome Closed(Received close)
    {
        var planned = close.CloseStatus == (WebSocketCloseStatus)CloseCodes.GoingAway && close.CloseDescription == CloseCodes.DrainDeploy;
        var code = close.CloseStatus is { } status ? ((int)status).ToString(System.Globalization.CultureInfo.InvariantCulture) : "none";
        return new SessionOutcome(_authenticated, planned, $"the market closed the connection ({code} {close.CloseDescription})".TrimEnd());
    }

    private static string Describe(Exception ex) => ex switch
    {
        WebSocketException { InnerException: HttpRequestException inner } => inner.Message,
        _ => ex.Message,
    };

    /// <summary>Holds writes on the link's connection once it is dialled (a frame sent before that cannot be held, and needs not be).</summary>
    private sealed class HeldWrites(MarketSession session) : IWriteHolding
    {
        private LinkStream? _holding;

        public void Hold()
        {
            _holding = session._link;
            _holding?.Hold();
        }

        public ValueTask WriteHeldAsync() => _holding?.WriteHeldAsync() ?? ValueTask.CompletedTask;
    }

    private readonly record struct Received(WebSocketMessageType Type, ReadOnlyMemory<byte> Payload, bool Close, WebSocketCloseStatus? CloseStatus, string? CloseDescription);
}
