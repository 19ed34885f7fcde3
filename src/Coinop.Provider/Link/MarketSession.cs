using System.Net.WebSockets;
using Coinop.Core.Protocol;
using Coinop.Provider.Backends;
using Coinop.Provider.Hosting;
using Coinop.Provider.Jobs;
using Coinop.Provider.Workloads;
using Coinop.Runtime.Links;

namespace Coinop.Provider.Link;

/// <summary>
/// One connection to the market: dial, answer the challenge (<see cref="MarketHandshake"/>), send capabilities, then
/// heartbeat, take jobs (<see cref="LinkJobs"/>) and relay their output until the link ends. The
/// <see cref="MarketSocket"/> is the transport under it.
/// </summary>
internal sealed class MarketSession : IDisposable, IWorkloadLink
{
    private readonly AgentContext _agent;
    private readonly MarketSocket _socket;
    private readonly LinkJobs _jobs;
    private readonly CancellationTokenSource _end = new();
    private readonly SemaphoreSlim _capabilitiesGate = new(1, 1);
    private readonly LinkClock _clock;
    private readonly TaskCompletionSource _finished = new(TaskCreationOptions.RunContinuationsAsynchronously);
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
        _socket = new MarketSocket(agent.AgentVersion, _end.Token);
        _jobs = new LinkJobs(agent, _socket, _end.Token);
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
        var liveness = Task.CompletedTask;
        try
        {
            using (var handshake = new CancellationTokenSource(_agent.Options.HandshakeTimeout, _agent.Time))
            using (var handshakeLinked = CancellationTokenSource.CreateLinkedTokenSource(ct, handshake.Token))
            {
                try
                {
                    await _socket.ConnectAsync(ProviderOptions.ConnectUrlFor(MarketUrl), handshakeLinked.Token);
                    var (ok, refused) = await MarketHandshake.RunAsync(_agent, _socket, MarketUrl, handshakeLinked.Token);
                    if (refused is not null)
                    {
                        return refused;
                    }

                    _authenticated = true;
                    _nodes = ok!.Nodes;
                    _clock.Start(TimeSpan.FromMilliseconds(Math.Max(1, ok.HeartbeatTtlMs)));
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
            await _jobs.CancelAllAsync();
            await liveness;
            await _socket.CompleteAsync();
            _socket.Abort();
            _finished.TrySetResult();
        }
    }

    /// <summary>Tells the market the provider is draining (it stops routing jobs here).</summary>
    public ValueTask<bool> AnnounceDrainAsync(TimeSpan deadline) =>
        SendAsync(OutgoingFrame.Text(ProtocolJson.Serialize(new DrainNotice((int)Math.Min(int.MaxValue, deadline.TotalMilliseconds)))));

    /// <summary>Stops every job still running, each with a job_error carrying <paramref name="reason"/>, and waits for them.</summary>
    public Task<int> AbandonJobsAsync(string reason) => _jobs.AbandonAsync(reason);

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
    public void Dispose() => _socket.Dispose();

    private async Task<SessionOutcome> ReadLoopAsync(CancellationToken ct)
    {
        while (true)
        {
            var frame = await _socket.ReceiveAsync(ct);
            _clock.FrameReceived();
            if (frame.Close)
            {
                // Complete the close handshake; the writer sends it after anything already queued.
                await SendAsync(OutgoingFrame.Close(WebSocketCloseStatus.NormalClosure, ""), CancellationToken.None);
                return frame.Closed(_authenticated);
            }

            if (frame.Type != WebSocketMessageType.Text)
            {
                ProviderLog.UnknownFrame(_agent.Logger, frame.Payload.Length);
                continue;
            }

            // Jobs are most of the frames a busy link carries: read on their own path (the same result, a tenth of the CPU).
            if (JobOrderReader.TryRead(frame.Payload.Span, out var order) == JobOrderReader.Outcome.Job)
            {
                await _jobs.StartAsync(order!);
                continue;
            }

            var message = ProtocolJson.TryDeserialize(frame.Payload.Span);
            switch (message)
            {
                case JobMessage job:
                    await _jobs.StartAsync(JobOrder.From(job));
                    break;
                case JobWindow window:
                    _jobs.Grant(window);
                    break;
                case JobCancel cancel:
                    _jobs.Cancel(cancel.JobId);
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
                case HeartbeatAck:
                    break;
                default:
                    ProviderLog.UnknownFrame(_agent.Logger, frame.Payload.Length);
                    break;
            }
        }
    }

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

    ValueTask<bool> IWorkloadLink.SendChunkAsync(byte kind, Guid id, long epoch, byte? lead, ReadOnlyMemory<byte> data, bool droppable,
        CancellationToken cancellationToken) =>
        _socket.SendChunkAsync(kind, id, epoch, lead, data, droppable, cancellationToken);

    /// <summary>Sends or queues a frame; false (and the frame released) when the link is gone.</summary>
    private ValueTask<bool> SendAsync(OutgoingFrame frame, CancellationToken ct = default) => _socket.SendAsync(frame, ct);

    private static string Describe(Exception ex) => ex switch
    {
        WebSocketException { InnerException: HttpRequestException inner } => inner.Message,
        _ => ex.Message,
    };
}
