using System.Buffers.Text;
using System.Security.Cryptography;
using System.Threading.Channels;
using Coinop.Core.Protocol;
using Coinop.Core.Sealing;
using Coinop.Core.Workloads;
using Coinop.Provider.Hosting;
using Coinop.Provider.Workloads.Sandboxes;
using Microsoft.Extensions.Logging;
using NSec.Cryptography;

namespace Coinop.Provider.Workloads;

/// <summary>The market link as the workload agent uses it: control messages and binary chunks.</summary>
internal interface IWorkloadLink
{
    ValueTask<bool> SendAsync(ProtocolMessage message, CancellationToken cancellationToken);

    /// <summary>Sends <c>[kind][id][epoch](lead)data</c>; a <paramref name="droppable"/> chunk is dropped rather than waited for when the link is busy.</summary>
    ValueTask<bool> SendChunkAsync(byte kind, Guid id, long epoch, byte? lead, ReadOnlyMemory<byte> data, bool droppable, CancellationToken cancellationToken);
}

/// <summary>
/// The provider's half of the workload protocol, alive across market sessions. It runs what the market starts
/// through <see cref="WorkloadHost"/>, heartbeats every copy and standby, and obeys the single-writer rule of
/// docs/durability.md: a copy is stopped (killed at once) when <c>stop_after</c> has passed since the send of the last
/// heartbeat the market acknowledged for it, measured on the monotonic clock; a stopped copy is never restarted here,
/// only a new <c>workload_start</c> runs anything. Exits, losses, usage records and receipts go through an outbox that
/// survives reconnects (delivered at least once, in order); output goes out only while a link is up. After every
/// (re)connect a heartbeat reports what runs here, so the market can stop whatever is no longer current.
/// </summary>
internal sealed partial class WorkloadAgent : IAsyncDisposable
{
    private static readonly TimeSpan DefaultHeartbeat = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan WatchInterval = TimeSpan.FromMilliseconds(20);
    private const int MaxChunk = 64 * 1024 - 1;

    private readonly WorkloadHost _host;
    private readonly ProviderOptions _options;
    private readonly Key _sealingKey;
    private readonly WorkloadCapacity _capacity;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, CopyState> _copies = new(StringComparer.Ordinal);
    private readonly HashSet<string> _standbys = new(StringComparer.Ordinal);
    private readonly Dictionary<long, long> _heartbeatSentAt = [];
    private readonly List<Unconfirmed> _unconfirmed = [];
    private readonly Queue<ProtocolMessage> _resend = new();
    private readonly Channel<ProtocolMessage> _inbox = Channel.CreateUnbounded<ProtocolMessage>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Channel<Outgoing> _outbox = Channel.CreateUnbounded<Outgoing>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _stopping = new();
    private TaskCompletionSource _heartbeatNow = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource _linkChanged = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private IWorkloadLink? _link;
    private long _heartbeatIntervalTicks = DefaultHeartbeat.Ticks;
    private long _seq;
    private volatile bool _draining;
    private Task _loops = Task.CompletedTask;

    public WorkloadAgent(WorkloadHost host, ProviderOptions options, WorkloadHostOptions hostOptions, Key sealingKey, byte[] sealingBinding, TimeProvider time, ILogger logger)
    {
        _host = host;
        _options = options;
        _sealingKey = sealingKey;
        _time = time;
        _logger = logger;
        Incarnation = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
        _capacity = new WorkloadCapacity(host.Isolation, hostOptions.CpuCores, hostOptions.MemoryMb, options.WorkloadPrice.CpuMsatPerCoreSecond,
            options.WorkloadPrice.MemoryMsatPerGbSecond, Convert.ToBase64String(SealedBox.ExportPublicKey(sealingKey)), Convert.ToBase64String(sealingBinding),
            Incarnation, host.ApproximateLimits, host.Egress);
    }

    /// <summary>Random per run of the agent: the market learns from a new one that every copy of the previous run is gone.</summary>
    public string Incarnation { get; }

    /// <summary>What goes into <c>capabilities.workloads</c>.</summary>
    public WorkloadCapacity Capacity => _capacity;

    public void Start()
    {
        var ct = _stopping.Token;
        _loops = Task.WhenAll(
            Task.Run(() => InboxLoopAsync(ct), ct),
            Task.Run(() => OutboxLoopAsync(ct), ct),
            Task.Run(() => HeartbeatLoopAsync(ct), ct),
            Task.Run(() => WatchdogLoopAsync(ct), ct),
            Task.Run(() => EventsLoopAsync(ct), ct),
            Task.Run(() => LogsLoopAsync(ct), ct));
    }

    /// <summary>A session authenticated and sent capabilities: workload traffic may flow; report what runs here at once.</summary>
    public void Attach(IWorkloadLink link)
    {
        lock (_gate)
        {
            _link = link;
            // Reports a previous link took but never proved delivered go again first, in their order (the market ignores repeats).
            foreach (var lost in _unconfirmed)
            {
                _resend.Enqueue(lost.Message);
            }

            _unconfirmed.Clear();
            _linkChanged.TrySetResult();
            _linkChanged = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _heartbeatNow.TrySetResult();
        }
    }

    public void Detach(IWorkloadLink link)
    {
        lock (_gate)
        {
            if (ReferenceEquals(_link, link))
            {
                _link = null;
            }
        }
    }

    /// <summary>A workload message from the market on <paramref name="from"/>. Acknowledgements apply at once; starts, stops and releases run in order.</summary>
    public void OnMessage(IWorkloadLink from, ProtocolMessage message)
    {
        if (message is WorkloadAck ack)
        {
            Acknowledged(from, ack);
        }
        else
        {
            _inbox.Writer.TryWrite(message);
        }
    }

    /// <summary>
    /// Owner drain: stop every copy (reported to the market as lost with <c>provider_draining</c>, so it hands the work
    /// over at once), give up the standby reservations, and — when <paramref name="deliver"/>, i.e. a market is there to
    /// hear it — wait until the reports went out; all within <paramref name="timeout"/>.
    /// </summary>
    public async Task DrainAsync(TimeSpan timeout, bool deliver = true)
    {
        _draining = true;
        List<(string Id, CopyState Copy)> copies;
        lock (_gate)
        {
            copies = [.. _copies.Select(c => (c.Key, c.Value))];
            foreach (var (_, copy) in copies)
            {
                copy.StopReason ??= WorkloadLost.ProviderDraining;
            }

            foreach (var standby in _standbys)
            {
                _host.ReleaseStandby(standby);
            }

            _standbys.Clear();
        }

        using var deadline = new CancellationTokenSource(timeout, _time);
        try
        {
            await Task.WhenAll(copies.Select(c => _host.StopAsync(c.Id, c.Copy.Epoch, cancellationToken: deadline.Token)));
            await Task.WhenAll(copies.Select(c => c.Copy.Reported.Task)).WaitAsync(deadline.Token);
            if (!deliver)
            {
                return;
            }

            var flushed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _outbox.Writer.TryWrite(new Outgoing(null, flushed));
            await flushed.Task.WaitAsync(deadline.Token);
            LogDrained(_logger, copies.Count);
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            LogDrainTimedOut(_logger, timeout.TotalSeconds);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        _inbox.Writer.TryComplete();
        try
        {
            await _loops;
        }
        catch (OperationCanceledException)
        {
        }

        await _host.DisposeAsync();
        _stopping.Dispose();
    }

    private void Acknowledged(IWorkloadLink from, WorkloadAck ack)
    {
        lock (_gate)
        {
            // Frames on one link arrive in order: an answered heartbeat proves every report sent before it arrived.
            _unconfirmed.RemoveAll(u => ReferenceEquals(u.Link, from) && u.ConfirmedBySeq <= ack.Seq);
            if (!_heartbeatSentAt.Remove(ack.Seq, out var sentAt))
            {
                return;
            }

            foreach (var older in _heartbeatSentAt.Keys.Where(s => s < ack.Seq).ToList())
            {
                _heartbeatSentAt.Remove(older);
            }

            foreach (var renewed in ack.Renewed ?? [])
            {
                if (renewed is not null && _copies.TryGetValue(renewed.WorkloadId, out var copy) && copy.Epoch == renewed.Epoch && sentAt > copy.LastAckedSend)
                {
                    copy.LastAckedSend = sentAt; // measured from when that heartbeat was sent, never from when its ack came back
                }
            }
        }
    }

    private async Task InboxLoopAsync(CancellationToken ct)
    {
        try
        {
            await foreach (var message in _inbox.Reader.ReadAllAsync(ct))
            {
                try
                {
                    switch (message)
                    {
                        case WorkloadStart { Role: WorkloadStart.Standby } reserve:
                            Reserve(reserve);
                            break;
                        case WorkloadStart start:
                            await StartAsync(start, ct);
                            break;
                        case WorkloadStop stop:
                            Stop(stop);
                            break;
                        case WorkloadRelease release:
                            lock (_gate)
                            {
                                _standbys.Remove(release.WorkloadId);
                            }

                            _host.ReleaseStandby(release.WorkloadId);
                            break;
                    }
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    LogMessageFailed(_logger, message.GetType().Name, ex);
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    private void Reserve(WorkloadStart start)
    {
        UseTimings(start.Timings);
        if (_draining || start.Spec is null)
        {
            return;
        }

        if (_host.ReserveStandby(start.WorkloadId, start.Epoch, start.Spec.CpuCores, start.Spec.MemoryMb))
        {
            lock (_gate)
            {
                _standbys.Add(start.WorkloadId);
            }
        }
        else
        {
            LogReserveRefused(_logger, start.WorkloadId, start.Epoch);
        }
    }

    private async Task StartAsync(WorkloadStart start, CancellationToken ct)
    {
        UseTimings(start.Timings);
        var id = start.WorkloadId;
        if (Prepare(start) is not { } prepared)
        {
            return;
        }

        var copy = new CopyState(start.Epoch, _time.GetTimestamp(), TimeSpan.FromMilliseconds(start.Timings.StopAfterMs));
        lock (_gate)
        {
            if (_copies.TryGetValue(id, out var older) && older.Epoch >= start.Epoch)
            {
                Report(new WorkloadLost(id, start.Epoch, $"{WorkloadLost.StartFailed}: epoch {older.Epoch} is already here"));
                return;
            }

            _copies[id] = copy; // watched from now on: a start that hangs is stopped by the rule as well
            _standbys.Remove(id);
        }

        var result = await _host.StartAsync(prepared.Spec, prepared.Checkpoint, prepared.Key, ct);
        if (!result.Started)
        {
            lock (_gate)
            {
                if (_copies.TryGetValue(id, out var current) && current == copy)
                {
                    _copies.Remove(id);
                }
            }

            copy.Reported.TrySetResult();
            Report(new WorkloadLost(id, start.Epoch, $"{WorkloadLost.StartFailed}: {result.Error}"));
            return;
        }

        LogStarted(_logger, id, start.Epoch, result.Pid ?? 0, start.Checkpoint is null ? "no" : "yes");
        if (result.BridgePort is { } port && start.SealTo is { } sealTo)
        {
            var receipt = new AccessReceipt(id, start.Epoch, _options.WorkloadPublicHost, port, prepared.Spec.AccessCredential!, start.LeaseUntilUnixMs);
            Report(new WorkloadReceipt(id, start.Epoch, receipt.Seal(Convert.FromBase64String(sealTo))));
        }

        if (prepared.Key is { } key && start.Timings.CheckpointIntervalMs > 0)
        {
            _ = CheckpointLoopAsync(id, copy, key, TimeSpan.FromMilliseconds(start.Timings.CheckpointIntervalMs));
        }
    }

    /// <summary>The copy request, its opened checkpoint key and the checkpoint to restore; null (and reported) when the start cannot go ahead.</summary>
    private Prepared? Prepare(WorkloadStart start)
    {
        var id = start.WorkloadId;
        string? problem = null;
        byte[]? key = null, checkpoint = null;
        if (_draining)
        {
            problem = "the provider is draining";
        }
        else if (start.Spec is null || start.Timings is null || start.Timings.StopAfterMs <= 0)
        {
            problem = "the start lacks a spec or timings";
        }
        else if (start.SealedCheckpointKey is { } sealedKey)
        {
            key = Base64Bytes(sealedKey) is { } box ? CheckpointKey.Open(_sealingKey, id, box) : null;
            problem = key is null ? "the checkpoint key is not sealed to this provider" : null;
        }

        if (problem is null && start.Checkpoint is { } encoded)
        {
            checkpoint = Base64Bytes(encoded);
            problem = checkpoint is null ? "the checkpoint is not base64" : key is null ? "a checkpoint came without its key" : null;
        }

        if (problem is null && start.SealTo is not null && Base64Bytes(start.SealTo) is not { Length: SealedBox.PublicKeySize })
        {
            problem = "seal_to is not an X25519 public key";
        }

        CopySpec? spec = null;
        if (problem is null)
        {
            var s = start.Spec!;
            spec = new CopySpec(id, start.Epoch, s.Command, s.Args ?? [], new Dictionary<string, string>(), s.CpuCores, s.MemoryMb, s.Port,
                WantsStateDir: s.Checkpointed, AccessCredential: s.Port is null ? null : Convert.ToBase64String(RandomNumberGenerator.GetBytes(24)));
            problem = spec.Validate();
        }

        if (problem is not null)
        {
            LogStartRefused(_logger, id, start.Epoch, problem);
            Report(new WorkloadLost(id, start.Epoch, $"{WorkloadLost.StartFailed}: {problem}"));
            return null;
        }

        return new Prepared(spec!, checkpoint, key);
    }

    private void Stop(WorkloadStop stop)
    {
        lock (_gate)
        {
            if (_copies.TryGetValue(stop.WorkloadId, out var copy) && copy.Epoch <= stop.Epoch)
            {
                copy.StopReason ??= StoppedByMarket;
            }

            _standbys.Remove(stop.WorkloadId);
        }

        _ = StopCopyAsync(stop.WorkloadId, stop.Epoch, grace: null);
    }

    private async Task StopCopyAsync(string id, long epoch, TimeSpan? grace)
    {
        try
        {
            await _host.StopAsync(id, epoch, grace, _stopping.Token);
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception ex)
        {
            LogStopFailed(_logger, id, epoch, ex);
        }
    }

    private async Task HeartbeatLoopAsync(CancellationToken ct)
    {
        try
        {
            while (!ct.IsCancellationRequested)
            {
                Task now;
                lock (_gate)
                {
                    now = _heartbeatNow.Task;
                }

                await Task.WhenAny(now, Task.Delay(TimeSpan.FromTicks(Interlocked.Read(ref _heartbeatIntervalTicks)), _time, ct));
                ct.ThrowIfCancellationRequested();
                IWorkloadLink? link;
                WorkloadHeartbeat heartbeat;
                lock (_gate)
                {
                    var forced = _heartbeatNow.Task.IsCompleted;
                    if (forced)
                    {
                        _heartbeatNow = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    }

                    link = _link;
                    // Idle heartbeats go on while reports wait for the acknowledgement that proves them delivered.
                    if (link is null || (!forced && _copies.Count == 0 && _standbys.Count == 0 && _unconfirmed.Count == 0))
                    {
                        continue;
                    }

                    var seq = ++_seq;
                    heartbeat = new WorkloadHeartbeat(seq, Incarnation,
                        [.. _copies.Where(c => c.Value.StopReason is null).Select(c => new CopyRef(c.Key, c.Value.Epoch))], [.. _standbys]);
                    _heartbeatSentAt[seq] = _time.GetTimestamp();
                }

                await link.SendAsync(heartbeat, ct);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    /// <summary>The rule: a copy whose last acknowledged heartbeat was sent stop-after ago is killed, whatever the link says.</summary>
    private async Task WatchdogLoopAsync(CancellationToken ct)
    {
        try
        {
            while (!ct.IsCancellationRequested)
            {
                await Task.Delay(WatchInterval, _time, ct);
                List<(string Id, long Epoch, TimeSpan Silent)> due = [];
                lock (_gate)
                {
                    foreach (var (id, copy) in _copies)
                    {
                        var silent = _time.GetElapsedTime(copy.LastAckedSend);
                        if (copy.StopReason is null && silent >= copy.StopAfter)
                        {
                            copy.StopReason = WorkloadLost.StoppedByRule;
                            due.Add((id, copy.Epoch, silent));
                        }
                    }
                }

                foreach (var (id, epoch, silent) in due)
                {
                    LogStoppedByRule(_logger, id, epoch, silent.TotalMilliseconds);
                    _ = StopCopyAsync(id, epoch, TimeSpan.Zero);
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    private async Task EventsLoopAsync(CancellationToken ct)
    {
        try
        {
            await foreach (var e in _host.Events.ReadAllAsync(ct))
            {
                switch (e)
                {
                    case Workloads.WorkloadUsage usage:
                        Report(new Core.Protocol.WorkloadUsage(usage.WorkloadId, usage.Epoch, usage.Signed));
                        break;
                    case Workloads.WorkloadExited exited:
                        Exited(exited);
                        break;
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    private void Exited(Workloads.WorkloadExited exited)
    {
        CopyState? copy;
        lock (_gate)
        {
            if (_copies.TryGetValue(exited.WorkloadId, out copy) && copy.Epoch == exited.Epoch)
            {
                _copies.Remove(exited.WorkloadId);
            }
            else
            {
                copy = null; // an older copy a newer start replaced: the market already moved on
            }
        }

        if (copy is null)
        {
            return;
        }

        copy.CheckpointLoop.Cancel();
        switch (copy.StopReason)
        {
            case null:
                Report(new Core.Protocol.WorkloadExited(exited.WorkloadId, exited.Epoch, exited.Exit.ExitCode, exited.Exit.OomKilled));
                break;
            case StoppedByMarket:
                break;
            default:
                Report(new WorkloadLost(exited.WorkloadId, exited.Epoch, copy.StopReason));
                break;
        }

        copy.Reported.TrySetResult();
    }

    private async Task LogsLoopAsync(CancellationToken ct)
    {
        try
        {
            await foreach (var log in _host.Logs.ReadAllAsync(ct))
            {
                if (CurrentLink() is not { } link || !WorkloadIds.TryParse(log.WorkloadId, out var id))
                {
                    continue; // output produced while no market listens is not kept
                }

                var lead = log.Stream == OutputStream.Stdout ? (byte)1 : (byte)2;
                for (var offset = 0; offset < log.Data.Length; offset += MaxChunk)
                {
                    var slice = log.Data.Slice(offset, Math.Min(MaxChunk, log.Data.Length - offset));
                    await link.SendChunkAsync(ChunkFrame.KindWorkloadLog, id, log.Epoch, lead, slice, droppable: true, ct);
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    /// <summary>Uploads the copy's state every interval while it runs (<see cref="Checkpoints.CheckpointLoop"/>).</summary>
    private async Task CheckpointLoopAsync(string workloadId, CopyState copy, byte[] key, TimeSpan interval)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token, copy.CheckpointLoop.Token);
        await new Checkpoints.CheckpointLoop(_host, CurrentLink, _time, _logger).RunAsync(workloadId, copy.Epoch, key, interval, linked.Token);
    }

    /// <summary>
    /// Delivers reports in order, each at least once. A report a link took counts as delivered only once the market
    /// answered a heartbeat sent after it on that link; until then it is kept, and sent again on the next link.
    /// </summary>
    private async Task OutboxLoopAsync(CancellationToken ct)
    {
        Task<bool>? pending = null; // one outstanding wait at a time: the outbox has a single reader
        try
        {
            while (true)
            {
                Task changed;
                IWorkloadLink? link;
                ProtocolMessage? resend;
                lock (_gate)
                {
                    link = _link;
                    changed = _linkChanged.Task;
                    _resend.TryPeek(out resend);
                }

                if (resend is null)
                {
                    pending ??= _outbox.Reader.WaitToReadAsync(ct).AsTask();
                    if (await Task.WhenAny(pending, changed) != pending)
                    {
                        continue; // a new link may have reports to send again first
                    }

                    var more = await pending;
                    pending = null;
                    if (!more)
                    {
                        return;
                    }

                    _outbox.Reader.TryPeek(out var item);
                    if (item.Flushed is { } flushed)
                    {
                        _outbox.Reader.TryRead(out _);
                        flushed.TrySetResult();
                        continue;
                    }
                }

                var message = resend ?? PeekOutbox();
                if (link is not null && await link.SendAsync(message, ct))
                {
                    lock (_gate)
                    {
                        if (resend is not null)
                        {
                            _resend.Dequeue();
                        }

                        _unconfirmed.Add(new Unconfirmed(link, _seq + 1, message));
                    }

                    if (resend is null)
                    {
                        _outbox.Reader.TryRead(out _);
                    }

                    continue;
                }

                await changed.WaitAsync(ct); // wait for the next session
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    private ProtocolMessage PeekOutbox()
    {
        _outbox.Reader.TryPeek(out var item);
        return item.Message!;
    }

    private IWorkloadLink? CurrentLink()
    {
        lock (_gate)
        {
            return _link;
        }
    }

    private void Report(ProtocolMessage message) => _outbox.Writer.TryWrite(new Outgoing(message, null));

    private void UseTimings(WorkloadLinkTimings? timings)
    {
        if (timings is { HeartbeatIntervalMs: > 0 })
        {
            Interlocked.Exchange(ref _heartbeatIntervalTicks, TimeSpan.FromMilliseconds(timings.HeartbeatIntervalMs).Ticks);
        }
    }

    private static byte[]? Base64Bytes(string text)
    {
        var bytes = new byte[Base64.GetMaxDecodedFromUtf8Length(text.Length)];
        return Convert.TryFromBase64String(text, bytes, out var written) ? bytes[..written] : null;
    }

    private const string StoppedByMarket = "stopped_by_market";

    private sealed record Prepared(CopySpec Spec, byte[]? Checkpoint, byte[]? Key);

    private readonly record struct Outgoing(ProtocolMessage? Message, TaskCompletionSource? Flushed);

    /// <summary>A report <see cref="Link"/> took, proven delivered by the answer to heartbeat <see cref="ConfirmedBySeq"/> or later.</summary>
    private sealed record Unconfirmed(IWorkloadLink Link, long ConfirmedBySeq, ProtocolMessage Message);

    /// <summary>One copy here: its epoch, when the heartbeat behind its latest acknowledgement was sent, and why it is being stopped.</summary>
    private sealed class CopyState(long epoch, long startedAt, TimeSpan stopAfter)
    {
        public long Epoch { get; } = epoch;

        /// <summary>Monotonic timestamp; the start's arrival until the first acknowledgement.</summary>
        public long LastAckedSend { get; set; } = startedAt;

        public TimeSpan StopAfter { get; } = stopAfter;

        public string? StopReason { get; set; }

        public CancellationTokenSource CheckpointLoop { get; } = new();

        /// <summary>Completes once the copy's end was put in the outbox (a drain waits for it).</summary>
        public TaskCompletionSource Reported { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Workload {WorkloadId} epoch {Epoch} started (pid {Pid}, restored checkpoint: {Restored})")]
    private static partial void LogStarted(ILogger logger, string workloadId, long epoch, int pid, string restored);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Workload {WorkloadId} epoch {Epoch} not started: {Problem}")]
    private static partial void LogStartRefused(ILogger logger, string workloadId, long epoch, string problem);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Workload {WorkloadId} epoch {Epoch}: no acknowledgement from the market for {SilentMs:0} ms; the copy is stopped by the rule")]
    private static partial void LogStoppedByRule(ILogger logger, string workloadId, long epoch, double silentMs);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Standby reservation for workload {WorkloadId} epoch {Epoch} refused: no room or a stale epoch")]
    private static partial void LogReserveRefused(ILogger logger, string workloadId, long epoch);

    [LoggerMessage(Level = LogLevel.Error, Message = "Handling the market's {Message} failed")]
    private static partial void LogMessageFailed(ILogger logger, string message, Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "Stopping workload {WorkloadId} epoch {Epoch} failed")]
    private static partial void LogStopFailed(ILogger logger, string workloadId, long epoch, Exception exception);



    [LoggerMessage(Level = LogLevel.Information, Message = "Workloads drained: {Copies} copies stopped and reported")]
    private static partial void LogDrained(ILogger logger, int copies);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Workload drain did not finish within {TimeoutS} s")]
    private static partial void LogDrainTimedOut(ILogger logger, double timeoutS);
}
