using System.Security.Cryptography;
using System.Threading.Channels;
using Coinop.Core.Protocol;
using Coinop.Core.Sealing;
using Coinop.Core.Workloads;
using Coinop.Provider.Hosting;
using Microsoft.Extensions.Logging;
using NSec.Cryptography;

namespace Coinop.Provider.Workloads;

/// <summary>
/// The provider's half of the workload protocol, alive across market sessions: the shell around two sans-IO rules.
/// It runs what the market starts through <see cref="WorkloadHost"/> and heartbeats every copy and standby; the
/// single-writer rule of docs/durability.md is <see cref="StopAfterRule"/>, kept in <see cref="HeldCopies"/> (a copy is killed once <c>stop_after</c>
/// passed since the send of the last heartbeat the market acknowledged, on the monotonic clock; a stopped copy is never
/// restarted here, only a new <c>workload_start</c> runs anything), and exits, losses, usage records and receipts go
/// through <see cref="WorkloadReports"/> (delivered at least once, in order, across reconnects). Output goes out
/// only while a link is up. After every (re)connect a heartbeat reports what runs here, so the market can stop whatever
/// is no longer current.
/// </summary>
internal sealed class WorkloadAgent : IAsyncDisposable
{
    private static readonly TimeSpan DefaultHeartbeat = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan WatchInterval = TimeSpan.FromMilliseconds(20);

    private readonly WorkloadHost _host;
    private readonly ProviderOptions _options;
    private readonly Key _signingKey;
    private readonly Key _sealingKey;
    private readonly WorkloadCapacity _capacity;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly CopyUploads _uploads;

    private readonly WorkloadReports _reports = new();
    private readonly HeldCopies _held;

    private readonly Channel<ProtocolMessage> _inbox = Channel.CreateUnbounded<ProtocolMessage>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _stopping = new();
    private long _heartbeatIntervalTicks = DefaultHeartbeat.Ticks;
    private volatile bool _draining;
    private Task _loops = Task.CompletedTask;

    /// <param name="signingKey">The provider's Ed25519 identity key: it signs every access receipt.</param>
    public WorkloadAgent(WorkloadHost host, ProviderOptions options, WorkloadHostOptions hostOptions, Key signingKey, Key sealingKey, byte[] sealingBinding,
        TimeProvider time, ILogger logger)
    {
        _host = host;
        _options = options;
        _signingKey = signingKey;
        _sealingKey = sealingKey;
        _time = time;
        _held = new HeldCopies(time);
        _logger = logger;
        _uploads = new CopyUploads(host, () => _reports.Link, time, logger);
        Incarnation = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
        _capacity = new WorkloadCapacity(host.Isolation, hostOptions.CpuCores, hostOptions.MemoryMb, options.WorkloadPrice.CpuMsatPerCoreSecond,
            options.WorkloadPrice.MemoryMsatPerGbSecond, Convert.ToBase64String(SealedBox.ExportPublicKey(sealingKey)), Convert.ToBase64String(sealingBinding),
            Incarnation, host.ApproximateLimits, host.Egress);
    }

    /// <summary>Random per run of the agent: the market learns from a new one that every copy of the previous run is gone.</summary>
    public string Incarnation { get; }

    /// <summary>What goes into <c>capabilities.workloads</c>.</summary>
    public WorkloadCapacity Capacity => _capacity;

    /// <summary>How long until the first copy here stops unless the market acknowledges a heartbeat; null when none runs.</summary>
    public TimeSpan? UntilFirstStop => _held.UntilFirstStop();

    public void Start()
    {
        var ct = _stopping.Token;
        _loops = Task.WhenAll(
            Task.Run(() => InboxLoopAsync(ct), ct),
            Task.Run(() => _reports.SendLoopAsync(ct), ct),
            Task.Run(() => HeartbeatLoopAsync(ct), ct),
            Task.Run(() => WatchdogLoopAsync(ct), ct),
            Task.Run(() => EventsLoopAsync(ct), ct),
            Task.Run(() => _uploads.OutputLoopAsync(ct), ct));
    }

    /// <summary>A session authenticated and sent capabilities: workload traffic may flow; report what runs here at once.</summary>
    public void Attach(IWorkloadLink link)
    {
        _reports.Attach(link);
        _held.RequestHeartbeat();
    }

    public void Detach(IWorkloadLink link) => _reports.Detach(link);

    /// <summary>A workload message from the market on <paramref name="from"/>. Acknowledgements apply at once; starts, stops and releases run in order.</summary>
    public void OnMessage(IWorkloadLink from, ProtocolMessage message)
    {
        if (message is WorkloadAck ack)
        {
            _reports.Acknowledged(from, ack.Seq);
            _held.Acknowledged(ack.Seq, ack.Renewed);
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
        var (copies, reported, standbys) = _held.StopAll(WorkloadLost.ProviderDraining);
        foreach (var standby in standbys)
        {
            _host.ReleaseStandby(standby);
        }

        using var deadline = new CancellationTokenSource(timeout, _time);
        try
        {
            await Task.WhenAll(copies.Select(c => _host.StopAsync(c.WorkloadId, c.Epoch, cancellationToken: deadline.Token)));
            await Task.WhenAll(reported).WaitAsync(deadline.Token);
            if (!deliver)
            {
                return;
            }

            await _reports.SentAsync().WaitAsync(deadline.Token);
            WorkloadAgentLog.Drained(_logger, copies.Count);
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            WorkloadAgentLog.DrainTimedOut(_logger, timeout.TotalSeconds);
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
                            _held.RemoveStandby(release.WorkloadId);

                            _host.ReleaseStandby(release.WorkloadId);
                            break;
                    }
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    WorkloadAgentLog.MessageFailed(_logger, message.GetType().Name, ex);
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
            _held.AddStandby(start.WorkloadId);
        }
        else
        {
            WorkloadAgentLog.ReserveRefused(_logger, start.WorkloadId, start.Epoch);
        }
    }

    private async Task StartAsync(WorkloadStart start, CancellationToken ct)
    {
        UseTimings(start.Timings);
        var id = start.WorkloadId;
        var prepared = StartRequest.Prepare(start, _sealingKey, _draining, out var problem);
        if (prepared is null)
        {
            WorkloadAgentLog.StartRefused(_logger, id, start.Epoch, problem!);
            Report(new WorkloadLost(id, start.Epoch, $"{WorkloadLost.StartFailed}: {problem}"));
            return;
        }

        var copy = new CopyResources(start.Epoch);
        if (_held.TryStart(id, start.Epoch, TimeSpan.FromMilliseconds(start.Timings.StopAfterMs), copy) is { } refusal)
        {
            Report(new WorkloadLost(id, start.Epoch, $"{WorkloadLost.StartFailed}: {refusal}"));
            return;
        }

        var result = await _host.StartAsync(prepared.Spec, prepared.Checkpoint, prepared.Key, ct);
        if (!result.Started)
        {
            _held.StartFailed(id, start.Epoch, copy);

            copy.Reported.TrySetResult();
            Report(new WorkloadLost(id, start.Epoch, $"{WorkloadLost.StartFailed}: {result.Error}"));
            return;
        }

        WorkloadAgentLog.Started(_logger, id, start.Epoch, result.Pid ?? 0, start.Checkpoint is null ? "no" : "yes");
        if (result.BridgePort is { } port && start.SealTo is { } sealTo)
        {
            var receipt = new AccessReceipt(id, start.Epoch, _options.WorkloadPublicHost, port, prepared.Spec.AccessCredential!, start.LeaseUntilUnixMs);
            Report(new WorkloadReceipt(id, start.Epoch, receipt.SignedWith(_signingKey).Seal(Convert.FromBase64String(sealTo))));
        }

        if (prepared.Key is { } key && start.Timings.CheckpointIntervalMs > 0)
        {
            _ = _uploads.CheckpointLoopAsync(id, copy.Epoch, key, TimeSpan.FromMilliseconds(start.Timings.CheckpointIntervalMs), _stopping.Token, copy.CheckpointLoop.Token);
        }
    }

    private void Stop(WorkloadStop stop)
    {
        _held.StopByMarket(stop.WorkloadId, stop.Epoch);

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
            WorkloadAgentLog.StopFailed(_logger, id, epoch, ex);
        }
    }

    private async Task HeartbeatLoopAsync(CancellationToken ct)
    {
        try
        {
            while (!ct.IsCancellationRequested)
            {
                await Task.WhenAny(_held.HeartbeatRequested, Task.Delay(TimeSpan.FromTicks(Interlocked.Read(ref _heartbeatIntervalTicks)), _time, ct));
                ct.ThrowIfCancellationRequested();
                var wanted = _held.TakeHeartbeatWanted();

                // Idle heartbeats go on while reports wait for the acknowledgement that proves them delivered.
                if (!_reports.TryNextHeartbeat(wanted, out var link, out var seq))
                {
                    continue;
                }

                await link.SendAsync(_held.Heartbeat(seq, Incarnation), ct);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    /// <summary>Applies the rule every watch interval: a copy whose stop deadline passed is killed, whatever the link says.</summary>
    private async Task WatchdogLoopAsync(CancellationToken ct)
    {
        try
        {
            while (!ct.IsCancellationRequested)
            {
                await Task.Delay(WatchInterval, _time, ct);
                foreach (var copy in _held.Due())
                {
                    WorkloadAgentLog.StoppedByRule(_logger, copy.WorkloadId, copy.Epoch, copy.Silent.TotalMilliseconds);
                    _ = StopCopyAsync(copy.WorkloadId, copy.Epoch, TimeSpan.Zero);
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
                        Ended(exited);
                        break;
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    /// <summary>A copy's process ended: the rule says what the market hears (its exit, its loss, or nothing when the market stopped it).</summary>
    private void Ended(Workloads.WorkloadExited exited)
    {
        var (end, copy) = _held.Ended(exited.WorkloadId, exited.Epoch);
        if (end is not { } ended)
        {
            return; // an older copy a newer start replaced: the market already moved on
        }

        copy?.CheckpointLoop.Cancel();
        switch (ended.Report)
        {
            case CopyEndReport.Exited:
                Report(new Core.Protocol.WorkloadExited(exited.WorkloadId, exited.Epoch, exited.Exit.ExitCode, exited.Exit.OomKilled));
                break;
            case CopyEndReport.Lost:
                Report(new WorkloadLost(exited.WorkloadId, exited.Epoch, ended.Reason!));
                break;
        }

        copy?.Reported.TrySetResult();
    }

    private void Report(ProtocolMessage message) => _reports.Add(message);

    private void UseTimings(WorkloadLinkTimings? timings)
    {
        if (timings is { HeartbeatIntervalMs: > 0 })
        {
            Interlocked.Exchange(ref _heartbeatIntervalTicks, TimeSpan.FromMilliseconds(timings.HeartbeatIntervalMs).Ticks);
        }
    }
}
