using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Threading.Channels;
using Coinop.Core.Pricing;
using Coinop.Core.Protocol;
using Coinop.Core.Work;
using Coinop.Core.Workloads;
using Coinop.Market.Gateway;
using Coinop.Market.Hosting;
using Coinop.Storage.Work;
using Coinop.Storage.Workloads;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using static Coinop.Core.Workloads.WorkloadEffect;
using static Coinop.Core.Workloads.WorkloadInput;

namespace Coinop.Market.Workloads;

/// <summary>What a submit came to: the stored workload, or why it was not started (<see cref="Capacity"/>: no room).</summary>
public sealed record SubmitOutcome(StoredWorkload? Workload, string? Problem, bool Capacity = false);

/// <summary>What a consumer command came to: the workload after it, or why it changed nothing.</summary>
public sealed record CommandOutcome(StoredWorkload? Workload, string? Rejection, bool NotFound = false);

/// <summary>
/// Drives every open workload's state machine (<see cref="WorkloadMachine"/>) with what providers report and with
/// time, and executes its effects: kernel claims, grants, renewals, revokes and finishes through <see cref="IWorkStore"/>,
/// starts, stops and reservations through the providers' sessions, placement by advertised capacity, and money through
/// billing: the time consumed is settled to the serving providers periodically and before the set of them changes, and
/// the rest is refunded when the workload ends (see <see cref="IWorkloadBilling"/>). Everything runs on one loop, one
/// command at a time, so the effects of a decision run in the order the machine emitted them — a revoke is confirmed by
/// the store before the promote or respawn it makes room for is even decided — and a significant change is saved
/// (compare-and-set) before any of its effects leaves the market.
/// <para>After a market restart the open workloads are loaded back, silence is measured from no earlier than the end of
/// the failover TTL minus evict-after (providers get that long to come back before anything is evicted), and revokes or
/// placements that were under way are finished.</para>
/// </summary>
public sealed partial class WorkloadSupervisor : BackgroundService
{
    public const string MeterName = "Coinop.Market.Workloads";

    private readonly IWorkStore _work;
    private readonly IWorkloadStore _store;
    private readonly IWorkloadUsageStore _usage;
    private readonly IWorkloadCheckpointStore _checkpoints;
    private readonly IWorkloadReceiptStore _receipts;
    private readonly ProviderDirectory _directory;
    private readonly IWorkloadBilling _billing;
    private readonly WorkloadLogFeed _logs;
    private readonly TimeProvider _time;
    private readonly ILogger<WorkloadSupervisor> _logger;
    private readonly TimeSpan _failoverTtl;
    private readonly TimeSpan _settleInterval;
    private DateTimeOffset _lastRecovery;
    private readonly Channel<Command> _commands = Channel.CreateUnbounded<Command>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Dictionary<string, Entry> _open = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, CurrentCopy> _current = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _incarnations = new(StringComparer.Ordinal);
    private readonly TaskCompletionSource _loaded = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Counter<long> _submitted;
    private readonly Counter<long> _failovers;
    private readonly Histogram<double> _heartbeatCost;
    private int _tickQueued;

    public WorkloadSupervisor(
        IWorkStore work,
        IWorkloadStore store,
        IWorkloadUsageStore usage,
        IWorkloadCheckpointStore checkpoints,
        IWorkloadReceiptStore receipts,
        ProviderDirectory directory,
        IWorkloadBilling billing,
        WorkloadLogFeed logs,
        MarketOptions options,
        TimeProvider time,
        IMeterFactory meters,
        ILogger<WorkloadSupervisor> logger)
    {
        _work = work;
        _store = store;
        _usage = usage;
        _checkpoints = checkpoints;
        _receipts = receipts;
        _directory = directory;
        _billing = billing;
        _logs = logs;
        _time = time;
        _logger = logger;
        Timings = options.WorkloadTimings.EnsureValid();
        CheckpointInterval = TimeSpan.FromSeconds(options.CheckpointInterval);
        MaxCheckpointBytes = options.MaxCheckpointBytes;
        _failoverTtl = TimeSpan.FromSeconds(options.FailoverTtl);
        _settleInterval = TimeSpan.FromSeconds(options.WorkloadSettleInterval);
        var meter = meters.Create(MeterName);
        _submitted = meter.CreateCounter<long>("coinop.workloads.submitted", "{workload}", "Workloads started");
        _failovers = meter.CreateCounter<long>("coinop.workloads.failovers", "{copy}", "Copies started after a lost one: promoted standbys and respawns");
        _heartbeatCost = meter.CreateHistogram<double>("coinop.workloads.heartbeat.duration", "ms", "Time to process one provider's workload heartbeat");
    }

    public WorkloadTimings Timings { get; }

    public TimeSpan CheckpointInterval { get; }

    public long MaxCheckpointBytes { get; }

    /// <summary>How often time is fed to the machines: fine enough for the shortest deadline, never busier than needed.</summary>
    private TimeSpan TickInterval => TimeSpan.FromTicks(Math.Clamp(Timings.HeartbeatInterval.Ticks / 2, TimeSpan.FromMilliseconds(50).Ticks, TimeSpan.FromSeconds(1).Ticks));

    /// <summary>True when <paramref name="providerId"/> runs the copy of <paramref name="workloadId"/> allowed to run now, at <paramref name="epoch"/>.</summary>
    public bool IsCurrentCopy(string workloadId, string providerId, long epoch) =>
        _current.TryGetValue(workloadId, out var copy) && copy.Epoch == epoch && copy.Provider == providerId;

    /// <summary>Where a workload would go now, and at what price (nothing is reserved yet).</summary>
    public Task<(PlacementPlan? Plan, string? Problem)> PlanAsync(WorkloadSpec spec, string? pinned, IReadOnlySet<string>? keyHolders, CancellationToken cancellationToken) =>
        RunAsync<(PlacementPlan?, string?)>(done => new PlanCommand(spec, pinned, keyHolders, done), cancellationToken);

    /// <summary>
    /// Starts a paid-for workload on its planned providers, if they still have room; <paramref name="payment"/> (the
    /// payment's commit) runs in the transaction that stores it.
    /// </summary>
    public Task<SubmitOutcome> SubmitAsync(string id, WorkloadSpec spec, PlacementPlan plan, WorkloadTerms terms, IReadOnlyDictionary<string, string> sealedKeys,
        WorkloadSaveHook? payment, CancellationToken cancellationToken) =>
        RunAsync<SubmitOutcome>(done => new SubmitCommand(id, spec, plan, terms, sealedKeys, payment, done), cancellationToken);

    public Task<CommandOutcome> CancelAsync(string id, CancellationToken cancellationToken) =>
        RunAsync<CommandOutcome>(done => new ConsumerCommand(id, new Cancel("consumer"), 0, null, done), cancellationToken);

    /// <summary>Extends the lease; <paramref name="payment"/> runs in the transaction that saves the longer lease.</summary>
    public Task<CommandOutcome> TopUpAsync(string id, TimeSpan extra, long paidMsat, WorkloadSaveHook? payment, CancellationToken cancellationToken) =>
        RunAsync<CommandOutcome>(done => new ConsumerCommand(id, new TopUp(extra), paidMsat, payment, done), cancellationToken);

    /// <summary>Queues something a provider sent (from its session's reader loop; never blocks).</summary>
    internal void Post(Command command) => _commands.Writer.TryWrite(command);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await LoadAsync(stoppingToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogLoadFailed(_logger, ex);
            throw;
        }

        using var ticker = _time.CreateTimer(_ => QueueTick(), null, TickInterval, TickInterval);
        try
        {
            await foreach (var command in _commands.Reader.ReadAllAsync(stoppingToken))
            {
                try
                {
                    await HandleAsync(command, stoppingToken);
                }
                catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
                {
                    // One bad command must not stop every workload: the machine's next input re-decides from the stored state.
                    LogCommandFailed(_logger, command.GetType().Name, ex);
                    command.Fail(ex);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private async Task<T> RunAsync<T>(Func<TaskCompletionSource<T>, Command> make, CancellationToken cancellationToken)
    {
        await _loaded.Task.WaitAsync(cancellationToken);
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_commands.Writer.TryWrite(make(done)))
        {
            throw new InvalidOperationException("the workload supervisor has stopped");
        }

        return await done.Task.WaitAsync(cancellationToken);
    }

    private void QueueTick()
    {
        if (Interlocked.Exchange(ref _tickQueued, 1) == 0)
        {
            _commands.Writer.TryWrite(new TickCommand());
        }
    }

    private async Task LoadAsync(CancellationToken cancellationToken)
    {
        var stored = await _store.ListAsync(openOnly: true, int.MaxValue, cancellationToken);
        var now = Now();
        // No eviction before the failover TTL: providers that were online get that long to reconnect after a restart.
        var contactFloor = now + _failoverTtl - Timings.EvictAfter;
        foreach (var s in stored)
        {
            var w = s.Workload;
            var entry = new Entry(s with { Workload = w.LastContact < contactFloor ? w with { LastContact = contactFloor } : w });
            _open[w.Id] = entry;
            UpdateCurrent(entry);
        }

        _loaded.TrySetResult();
        LogLoaded(_logger, _open.Count);
        await RecoverBillingAsync(now, cancellationToken);
        foreach (var entry in _open.Values.ToList())
        {
            // Finish what a previous run left half-way: a revoke not yet confirmed, a respawn not yet placed.
            var w = entry.Workload;
            if (w.Revoking is { } revoking)
            {
                await RunAsync(entry, [new RevokeLease(revoking.Epoch)], cancellationToken);
            }
            else if (w is { State: WorkloadState.Respawning, Provider: null })
            {
                await RunAsync(entry, [new PlaceCopy(w.Epoch, w.Attempts, w.History.LastOrDefault(h => h.Provider is not null)?.Provider ?? "")], cancellationToken);
            }
        }
    }

    private async Task HandleAsync(Command command, CancellationToken ct)
    {
        switch (command)
        {
            case TickCommand:
                Volatile.Write(ref _tickQueued, 0);
                foreach (var entry in _open.Values.ToList())
                {
                    await ApplyAsync(entry, new Tick(), ct);
                    var now = Now();
                    if (_open.ContainsKey(entry.Workload.Id) && (entry.SettledUntil is not { } settled || now - settled >= _settleInterval))
                    {
                        await SettleAsync(entry, now, ct);
                    }
                }

                await RecoverBillingAsync(Now(), ct);
                break;
            case PlanCommand plan:
                plan.Done.TrySetResult(WorkloadPlacement.Plan(plan.Spec, plan.Pinned, Candidates(), plan.KeyHolders));
                break;
            case SubmitCommand submit:
                submit.Done.TrySetResult(await SubmitAsync(submit, ct));
                break;
            case ConsumerCommand consumer:
                consumer.Done.TrySetResult(await ConsumerAsync(consumer, ct));
                break;
            case HeartbeatCommand heartbeat:
                await HeartbeatAsync(heartbeat.Session, heartbeat.Heartbeat, ct);
                break;
            case ReportCommand report:
                var ignored = _open.TryGetValue(report.WorkloadId, out var reported)
                    ? (await ApplyAsync(reported, report.Input, ct))?.Rejection
                    : "the workload is finished or unknown";
                if (ignored is not null)
                {
                    LogReportIgnored(_logger, report.WorkloadId, report.Input.ToString(), ignored);
                }

                break;
            case UsageCommand usage:
                if (!await _usage.AddAsync(usage.ProviderId, usage.Record, usage.Signed, ct))
                {
                    LogUsageRefused(_logger, usage.Record.WorkloadId, usage.Record.Epoch, usage.ProviderId);
                }

                break;
            case ReceiptCommand receipt:
                if (!await _receipts.AddAsync(receipt.WorkloadId, receipt.Epoch, receipt.ProviderId, receipt.Sealed, ct))
                {
                    LogReceiptRefused(_logger, receipt.WorkloadId, receipt.Epoch, receipt.ProviderId);
                }

                break;
            case CheckpointCommand checkpoint:
                await CheckpointAsync(checkpoint, ct);
                break;
            case ProviderUpCommand up:
                await ProviderUpAsync(up.Session, ct);
                break;
            case ProviderGoneCommand gone:
                await ProviderGoneAsync(gone.Session, ct);
                break;
        }
    }

    private async Task<SubmitOutcome> SubmitAsync(SubmitCommand submit, CancellationToken ct)
    {
        // The plan was made before payment; the providers must still be there with room.
        var candidates = Candidates().ToDictionary(c => c.ProviderId, StringComparer.Ordinal);
        var chosen = new[] { submit.Plan.Primary }.Concat(submit.Plan.Standbys).ToList();
        if (chosen.Any(c => !candidates.TryGetValue(c.ProviderId, out var now) || !now.Fits(submit.Spec)))
        {
            return new SubmitOutcome(null, "the planned providers no longer have room; try again", Capacity: true);
        }

        var registered = await _work.RegisterAsync(new WorkRegistration(submit.Id, WorkKinds.Workload, RecoveryDisposition.Rerunnable), ct);
        if (!registered.Accepted)
        {
            return new SubmitOutcome(null, registered.Refusal == WorkRefusal.AlreadyRegistered
                ? "a workload with this id exists"
                : $"could not register the workload: {registered.Refusal}");
        }

        var decision = WorkloadMachine.Submit(submit.Id, submit.Spec, submit.Plan.Primary.ProviderId, [.. submit.Plan.Standbys.Select(s => s.ProviderId)], Now());
        var rates = chosen.ToDictionary(c => c.ProviderId, c => c.Price.MsatPerSecond(submit.Spec.CpuCores, submit.Spec.MemoryMb), StringComparer.Ordinal);
        if (!await _store.InsertAsync(decision.Next, submit.Terms, submit.SealedKeys, rates, ct, submit.Payment))
        {
            return new SubmitOutcome(null, "a workload with this id exists");
        }

        var entry = new Entry((await _store.FindAsync(submit.Id, ct))!);
        _open[submit.Id] = entry;
        _submitted.Add(1);
        LogSubmitted(_logger, submit.Id, submit.Plan.Primary.ProviderId, submit.Spec.Standbys, submit.Spec.Command);
        await RunAsync(entry, decision.Effects, ct);
        return new SubmitOutcome(entry.Stored, null);
    }

    private async Task<CommandOutcome> ConsumerAsync(ConsumerCommand command, CancellationToken ct)
    {
        if (!_open.TryGetValue(command.WorkloadId, out var entry))
        {
            var finished = await _store.FindAsync(command.WorkloadId, ct);
            return finished is null
                ? new CommandOutcome(null, "no such workload", NotFound: true)
                : new CommandOutcome(finished, "workload is " + Core.Text.WireEnum.Name(finished.Workload.State));
        }

        var terms = command.PaidMsat > 0 ? entry.Stored.Terms with { PaidMsat = entry.Stored.Terms.PaidMsat + command.PaidMsat } : null;
        var decision = await ApplyAsync(entry, command.Input, ct, terms, payment: command.Payment);
        return new CommandOutcome(entry.Stored, decision is null ? "the workload was changed meanwhile (by another market node); try again" : decision.Rejection);
    }

    private async Task HeartbeatAsync(ProviderSession session, WorkloadHeartbeat heartbeat, CancellationToken ct)
    {
        var started = Stopwatch.GetTimestamp();
        var provider = session.ProviderId;
        await LoseCopiesOfOtherIncarnationsAsync(provider, heartbeat.Incarnation, ct);
        var renewed = new List<CopyRef>();
        foreach (var copy in heartbeat.Copies)
        {
            if (_open.TryGetValue(copy.WorkloadId, out var entry))
            {
                await ApplyAsync(entry, new CopyHeartbeat(provider, copy.Epoch), ct, renewed: renewed);
            }
            else
            {
                // Finished, or never known here: whatever runs must stop.
                session.TrySend(new WorkloadStop(copy.WorkloadId, copy.Epoch, "not_current"));
            }
        }

        foreach (var workloadId in heartbeat.Standbys)
        {
            var decision = _open.TryGetValue(workloadId, out var entry) ? await ApplyAsync(entry, new StandbyHeartbeat(provider), ct) : null;
            if (decision is null || decision.Rejection is not null)
            {
                session.TrySend(new WorkloadRelease(workloadId));
            }
        }

        session.TrySend(new WorkloadAck(heartbeat.Seq, renewed));
        _heartbeatCost.Record(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
    }

    /// <summary>A provider that restarted (a new incarnation) lost every copy its previous run had: no need to wait for eviction.</summary>
    private async Task LoseCopiesOfOtherIncarnationsAsync(string provider, string incarnation, CancellationToken ct)
    {
        if (_incarnations.TryGetValue(provider, out var known) && known == incarnation)
        {
            return; // checked already for this run of the provider
        }

        _incarnations[provider] = incarnation;
        foreach (var entry in _open.Values.ToList())
        {
            var w = entry.Workload;
            if (w.AllowedToRun(provider, w.Epoch) && entry.Lease is { } lease && lease.Fence == w.Epoch
                && lease.Owner.OwnerId == provider && lease.Owner.IncarnationId != incarnation)
            {
                await ApplyAsync(entry, new CopyLost(provider, w.Epoch, "the provider restarted"), ct);
            }
        }
    }

    private async Task CheckpointAsync(CheckpointCommand command, CancellationToken ct)
    {
        if (!_open.TryGetValue(command.WorkloadId, out var entry) || !entry.Workload.AllowedToRun(command.ProviderId, command.Epoch))
        {
            LogCheckpointRefused(_logger, command.WorkloadId, command.Epoch, command.ProviderId);
            return;
        }

        var stored = await _checkpoints.AddAsync(command.WorkloadId, command.Epoch, command.ProviderId, command.Data, command.Sha256, ct);
        if (stored is null)
        {
            LogCheckpointRefused(_logger, command.WorkloadId, command.Epoch, command.ProviderId);
            return;
        }

        await ApplyAsync(entry, new CheckpointStored(command.ProviderId, command.Epoch, stored.Id), ct);
    }

    private async Task ProviderUpAsync(ProviderSession session, CancellationToken ct)
    {
        if (session.WorkloadCapacity?.Incarnation is { } incarnation)
        {
            await LoseCopiesOfOtherIncarnationsAsync(session.ProviderId, incarnation, ct);
        }

        // A provider that restarted lost its reservations: hold them again (reserving twice is harmless).
        foreach (var entry in _open.Values.Where(e => e.Workload.Standbys.Any(s => s.Provider == session.ProviderId)))
        {
            session.TrySend(Start(entry, WorkloadStart.Standby, entry.Workload.Epoch, sealedKey: null, checkpoint: null));
        }
    }

    /// <summary>
    /// A provider that drained and closed its session has stopped every copy it ran (it reports each as lost before
    /// closing): its kernel leases are handed back (owner drain) and whatever it still held is treated as lost.
    /// </summary>
    private async Task ProviderGoneAsync(ProviderSession session, CancellationToken ct)
    {
        if (!session.Draining || session.WorkloadCapacity?.Incarnation is not { } incarnation)
        {
            return;
        }

        var drained = await _work.DrainOwnerAsync(new LeaseOwner(session.ProviderId, incarnation), ct);
        LogOwnerDrained(_logger, session.ProviderId, drained.Released.Count, drained.Abandoned.Count);
        foreach (var entry in _open.Values.Where(e => e.Workload.AllowedToRun(session.ProviderId, e.Workload.Epoch)).ToList())
        {
            await ApplyAsync(entry, new CopyLost(session.ProviderId, entry.Workload.Epoch, WorkloadLost.ProviderDraining), ct);
        }
    }

    /// <summary>
    /// Applies an input, saves, then runs the effects; inputs the effects produce (a confirmed revoke, a placement) follow
    /// at once. New <paramref name="terms"/> and the <paramref name="payment"/> that goes with them are saved only when the
    /// input is accepted.
    /// </summary>
    private async Task<WorkloadDecision?> ApplyAsync(Entry entry, WorkloadInput input, CancellationToken ct, WorkloadTerms? terms = null, List<CopyRef>? renewed = null,
        WorkloadSaveHook? payment = null)
    {
        var decision = WorkloadMachine.Apply(entry.Workload, input, Timings, Now());
        var accepted = decision.Rejection is null;
        if (!await PersistAsync(entry, decision.Next, accepted ? terms ?? entry.Stored.Terms : entry.Stored.Terms, ct, accepted ? payment : null))
        {
            return null;
        }

        await RunAsync(entry, decision.Effects, ct, renewed);
        return decision;
    }

    private async Task RunAsync(Entry entry, IReadOnlyList<WorkloadEffect> effects, CancellationToken ct, List<CopyRef>? renewed = null)
    {
        var followUps = new List<WorkloadInput>();
        foreach (var effect in effects)
        {
            if (await ExecuteAsync(entry, effect, renewed, ct) is { } followUp)
            {
                followUps.Add(followUp);
            }
        }

        UpdateCurrent(entry);
        if (entry.Workload.IsTerminal)
        {
            _open.Remove(entry.Workload.Id);
            _current.TryRemove(entry.Workload.Id, out _);
            _logs.Signal(entry.Workload.Id);
            LogFinished(_logger, entry.Workload.Id, Core.Text.WireEnum.Name(entry.Workload.State), entry.Workload.Reason ?? "");
            return;
        }

        foreach (var followUp in followUps)
        {
            await ApplyAsync(entry, followUp, ct);
        }
    }

    private async Task<WorkloadInput?> ExecuteAsync(Entry entry, WorkloadEffect effect, List<CopyRef>? renewed, CancellationToken ct)
    {
        var id = entry.Workload.Id;
        switch (effect)
        {
            case StartCopy s:
                return await StartCopyAsync(entry, s.Provider, s.Epoch, s.RestoreCheckpoint, ct);
            case PromoteStandby p:
                return await StartCopyAsync(entry, p.Provider, p.Epoch, p.RestoreCheckpoint, ct);
            case StopCopy s:
                _directory.Find(s.Provider)?.TrySend(new WorkloadStop(id, s.Epoch, s.Reason));
                return null;
            case RevokeLease r:
                LogRevoking(_logger, id, r.Epoch, entry.Workload.Reason ?? "");
                var revoked = await _work.RevokeAsync(id, r.Epoch, entry.Workload.Reason ?? "revoked", ct);
                entry.Lease = null;
                if (!revoked.Accepted)
                {
                    LogRevokeRefused(_logger, id, r.Epoch, revoked.Refusal?.ToString() ?? "");
                    return null;
                }

                return new LeaseRevoked(r.Epoch);
            case RenewLease r:
                var refusal = await RenewAsync(entry, r.Provider, r.Epoch, ct);
                if (refusal is null)
                {
                    renewed?.Add(new CopyRef(id, r.Epoch));
                    return null;
                }

                return new CopyLost(r.Provider, r.Epoch, "lease " + refusal);
            case PlaceCopy p:
                var holders = entry.Workload.Spec.Checkpointed ? (await _store.KeyHoldersAsync(id, ct)).ToHashSet(StringComparer.Ordinal) : null;
                var choice = WorkloadPlacement.Respawn(entry.Workload.Spec, p.Avoid, Candidates(), holders);
                if (choice is null)
                {
                    return new PlacementFailed(p.Epoch, "no provider online has room");
                }

                // Saved with the placement: the new copy is paid the rate its provider asks now (unless it served this workload before).
                entry.PlacedRates.TryAdd(choice.ProviderId, choice.Price.MsatPerSecond(entry.Workload.Spec.CpuCores, entry.Workload.Spec.MemoryMb));
                return new CopyPlaced(choice.ProviderId, p.Epoch);
            case ReserveStandby r:
                _directory.Find(r.Provider)?.TrySend(Start(entry, WorkloadStart.Standby, entry.Workload.Epoch, sealedKey: null, checkpoint: null));
                return null;
            case ReleaseStandby r:
                _directory.Find(r.Provider)?.TrySend(new WorkloadRelease(id));
                return null;
            case FinishWork f:
                var finished = await _work.FinishAsync(id, f.Kind, f.Reason, ct);
                if (!finished.Accepted)
                {
                    LogFinishRefused(_logger, id, finished.Refusal?.ToString() ?? "");
                }

                return null;
            default:
                throw new InvalidOperationException($"unknown workload effect {effect}");
        }
    }

    /// <summary>
    /// Takes the kernel lease at <paramref name="epoch"/> for the provider (a claim for the first copy, a grant of the
    /// fence the revoke produced for every later one) and sends the start. Anything that prevents it is reported back to
    /// the machine as the copy being lost, which revokes that epoch and moves on.
    /// </summary>
    private async Task<WorkloadInput?> StartCopyAsync(Entry entry, string provider, long epoch, string? restore, CancellationToken ct)
    {
        var id = entry.Workload.Id;
        var session = _directory.Find(provider);
        if (session?.WorkloadCapacity is not { Incarnation: { } incarnation } || !session.Accepting)
        {
            return new CopyLost(provider, epoch, "the provider is not connected");
        }

        var owner = new LeaseOwner(provider, incarnation);
        var lease = epoch == 1
            ? await _work.ClaimAsync(id, owner, Timings.CopyLease, ct)
            : await _work.GrantAsync(id, epoch, owner, Timings.CopyLease, ct);
        if (!lease.Accepted || lease.Item?.Lease is not { } held || held.Fence != epoch || held.Owner != owner)
        {
            return new CopyLost(provider, epoch, $"the lease was refused ({lease.Refusal})");
        }

        entry.Lease = held;
        string? sealedKey = null, checkpoint = null;
        if (entry.Workload.Spec.Checkpointed)
        {
            sealedKey = await _store.SealedKeyAsync(id, provider, ct);
            if (restore is not null && await _checkpoints.ReadAsync(restore, ct) is { } data)
            {
                checkpoint = Convert.ToBase64String(data);
            }
        }

        if (epoch > 1)
        {
            _failovers.Add(1);
        }

        LogStarting(_logger, id, epoch, provider, restore ?? "none");
        return session.TrySend(Start(entry, WorkloadStart.Primary, epoch, sealedKey, checkpoint))
            ? null
            : new CopyLost(provider, epoch, "the provider's link is congested");
    }

    /// <returns>Null when the copy's lease was renewed; otherwise why not.</returns>
    private async Task<string?> RenewAsync(Entry entry, string provider, long epoch, CancellationToken ct)
    {
        var id = entry.Workload.Id;
        if (entry.Lease is not { } lease || lease.Fence != epoch || lease.Owner.OwnerId != provider)
        {
            // After a restart the proof is read back from the kernel.
            lease = (await _work.ObserveAsync(id, ct))?.Item.Lease is { } held && held.Fence == epoch && held.Owner.OwnerId == provider
                ? held
                : null!;
            if (lease is null)
            {
                return "not held";
            }
        }

        var renewed = await _work.RenewAsync(id, lease.Proof, Timings.CopyLease, ct);
        entry.Lease = renewed.Accepted ? renewed.Item!.Lease : null;
        return renewed.Accepted ? null : Core.Text.WireEnum.Name(renewed.Refusal!.Value);
    }

    private WorkloadStart Start(Entry entry, string role, long epoch, string? sealedKey, string? checkpoint)
    {
        var w = entry.Workload;
        return new WorkloadStart(w.Id, epoch, role,
            new WorkloadCopySpec(w.Spec.Command, w.Spec.Args, w.Spec.CpuCores, w.Spec.MemoryMb, w.Spec.Port, w.Spec.Checkpointed),
            sealedKey, checkpoint, entry.Stored.Terms.SealTo, w.PaidUntil.ToUnixTimeMilliseconds(),
            new WorkloadLinkTimings(Ms(Timings.HeartbeatInterval), Ms(Timings.ProviderStopAfter), Ms(CheckpointInterval)));
    }

    /// <summary>
    /// Saves when something more than contact times changed (those are rebuilt after a restart); false when another writer
    /// won. Money follows the providers serving the workload: the time they served is settled before the set changes, and
    /// once the workload ends its account is closed with the refund.
    /// </summary>
    private async Task<bool> PersistAsync(Entry entry, Workload next, WorkloadTerms terms, CancellationToken ct, WorkloadSaveHook? payment = null)
    {
        var before = entry.Stored;
        if (payment is null && terms == before.Terms && !Significant(before.Workload, next))
        {
            entry.Stored = before with { Workload = next };
            return true;
        }

        var now = Now();
        var serving = Serving(entry, before.Workload);
        if (!next.IsTerminal && !serving.SequenceEqual(Serving(entry, next)))
        {
            await SettleAsync(entry, now, ct);
        }

        var rates = entry.PlacedRates.Count == 0 ? before.Rates : before.Rates.Concat(entry.PlacedRates.Where(r => !before.Rates.ContainsKey(r.Key))).ToDictionary();
        var saved = await _store.SaveAsync(before, next, terms, rates, ct, payment);
        entry.PlacedRates.Clear();
        if (saved is not null)
        {
            entry.Stored = saved;
            if (next.IsTerminal && !before.Workload.IsTerminal)
            {
                await CloseAsync(entry, serving, now < before.Workload.PaidUntil ? now : before.Workload.PaidUntil, ct);
            }

            return true;
        }

        // Another market node changed (or finished) it: continue from what it wrote.
        LogConflict(_logger, next.Id);
        var current = await _store.FindAsync(next.Id, ct);
        if (current is null || current.Workload.IsTerminal)
        {
            _open.Remove(next.Id);
            _current.TryRemove(next.Id, out _);
        }
        else
        {
            entry.Stored = current;
        }

        return false;
    }

    /// <summary>Charges the time since the last settlement (at most up to the paid time) to the providers serving the workload now.</summary>
    private async Task SettleAsync(Entry entry, DateTimeOffset now, CancellationToken ct)
    {
        var w = entry.Workload;
        try
        {
            // A workload nobody pays for has no account: nothing to settle, ever.
            entry.SettledUntil = await _billing.SettleAsync(w.Id, Quote(entry), Serving(entry, w), now < w.PaidUntil ? now : w.PaidUntil, ct)
                ?? DateTimeOffset.MaxValue;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // The next tick tries again from where the store says the workload is settled.
            LogBillingFailed(_logger, w.Id, ex);
        }
    }

    /// <summary>Settles the last span with the providers that served it and refunds the rest (the recovery sweep finishes it if this fails).</summary>
    private async Task CloseAsync(Entry entry, IReadOnlyList<ProviderRate> serving, DateTimeOffset end, CancellationToken ct)
    {
        try
        {
            await _billing.CloseAsync(entry.Workload.Id, Quote(entry), serving, end, ct);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogBillingFailed(_logger, entry.Workload.Id, ex);
        }
    }

    /// <summary>Now and then: closes the accounts of workloads that ended while their account stayed open (a market that died in between).</summary>
    private async Task RecoverBillingAsync(DateTimeOffset now, CancellationToken ct)
    {
        if (now - _lastRecovery < _settleInterval)
        {
            return;
        }

        _lastRecovery = now;
        try
        {
            await _billing.RecoverAsync(ct);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogBillingFailed(_logger, "(recovery)", ex);
        }
    }

    private static WorkloadQuote Quote(Entry entry) => new(entry.Stored.Terms.RateMsatPerSecond);

    /// <summary>
    /// Who serves <paramref name="w"/>, each at its rate: the copy allowed to run (once placed, until the workload ends) and
    /// every standby holding a reservation. A provider with no recorded rate (a workload from before rates were kept) is paid nothing.
    /// </summary>
    private static IReadOnlyList<ProviderRate> Serving(Entry entry, Workload w)
    {
        decimal Rate(string provider) => entry.Stored.Rates.TryGetValue(provider, out var r) || entry.PlacedRates.TryGetValue(provider, out r) ? r : 0;
        var serving = new List<ProviderRate>(w.Standbys.Count + 1);
        if (w is { IsTerminal: false, Provider: { } primary })
        {
            serving.Add(new ProviderRate(primary, Rate(primary)));
        }

        serving.AddRange(w.Standbys.Select(s => new ProviderRate(s.Provider, Rate(s.Provider))));
        return serving;
    }

    private static bool Significant(Workload before, Workload next) =>
        before.State != next.State || before.Since != next.Since || before.Reason != next.Reason || before.Provider != next.Provider
        || before.Epoch != next.Epoch || before.Revoking != next.Revoking || before.Attempts != next.Attempts
        || before.PaidUntil != next.PaidUntil || before.Checkpoint != next.Checkpoint || before.History.Count != next.History.Count
        || !before.Standbys.Select(s => s.Provider).SequenceEqual(next.Standbys.Select(s => s.Provider));

    private void UpdateCurrent(Entry entry)
    {
        var w = entry.Workload;
        if (w.Provider is { } provider && w.AllowedToRun(provider, w.Epoch))
        {
            _current[w.Id] = new CurrentCopy(provider, w.Epoch);
        }
        else
        {
            _current.TryRemove(w.Id, out _);
        }
    }

    /// <summary>Connected providers that offer workloads and take work (not draining or closing), with what open workloads hold there.</summary>
    private List<PlacementCandidate> Candidates()
    {
        var used = new Dictionary<string, (double Cpu, long Memory)>(StringComparer.Ordinal);
        void Hold(string provider, WorkloadSpec spec)
        {
            var (cpu, memory) = used.GetValueOrDefault(provider);
            used[provider] = (cpu + spec.CpuCores, memory + spec.MemoryMb);
        }

        foreach (var entry in _open.Values)
        {
            var w = entry.Workload;
            if (w.Provider is { } primary)
            {
                Hold(primary, w.Spec);
            }

            if (w.Revoking is { } revoking)
            {
                Hold(revoking.Provider, w.Spec); // until the old copy is confirmed gone, its room is not free
            }

            foreach (var standby in w.Standbys)
            {
                Hold(standby.Provider, w.Spec);
            }
        }

        var candidates = new List<PlacementCandidate>();
        foreach (var session in _directory.Snapshot)
        {
            if (session.WorkloadCapacity is { } cap && session.Accepting)
            {
                var (cpu, memory) = used.GetValueOrDefault(session.ProviderId);
                candidates.Add(new PlacementCandidate(session.ProviderId, session.Name, cap.CpuCores, cap.MemoryMb, cpu, memory,
                    new WorkloadPrice(cap.CpuMsatPerCoreSecond, cap.MemoryMsatPerGbSecond), cap.Isolation));
            }
        }

        return candidates;
    }

    /// <summary>Now, in whole milliseconds (the store's resolution), so the machine's times and the stored ones agree.</summary>
    private DateTimeOffset Now() => DateTimeOffset.FromUnixTimeMilliseconds(_time.GetUtcNow().ToUnixTimeMilliseconds());

    private static int Ms(TimeSpan t) => (int)Math.Min(int.MaxValue, Math.Ceiling(t.TotalMilliseconds));

    private readonly record struct CurrentCopy(string Provider, long Epoch);

    /// <summary>An open workload as the loop keeps it: its stored form (with fresher contact times) and the lease proof of its copy.</summary>
    private sealed class Entry(StoredWorkload stored)
    {
        public StoredWorkload Stored { get; set; } = stored;

        public Workload Workload => Stored.Workload;

        /// <summary>The kernel lease of the current copy, as last claimed, granted or renewed here.</summary>
        public WorkLease? Lease { get; set; }

        /// <summary>How far the workload's time is settled, as billing last said; null until it first did.</summary>
        public DateTimeOffset? SettledUntil { get; set; }

        /// <summary>Rates of providers just placed, saved with the next write.</summary>
        public Dictionary<string, decimal> PlacedRates { get; } = new(StringComparer.Ordinal);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Supervising {Count} open workloads")]
    private static partial void LogLoaded(ILogger logger, int count);

    [LoggerMessage(Level = LogLevel.Critical, Message = "Could not load the open workloads")]
    private static partial void LogLoadFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "Workload command {Command} failed")]
    private static partial void LogCommandFailed(ILogger logger, string command, Exception exception);

    [LoggerMessage(Level = LogLevel.Information, Message = "Workload {WorkloadId} submitted: primary {Provider}, {Standbys} standbys, command {Command}")]
    private static partial void LogSubmitted(ILogger logger, string workloadId, string provider, int standbys, string command);

    [LoggerMessage(Level = LogLevel.Information, Message = "Workload {WorkloadId} epoch {Epoch} starting on {Provider} (restore {Checkpoint})")]
    private static partial void LogStarting(ILogger logger, string workloadId, long epoch, string provider, string checkpoint);

    [LoggerMessage(Level = LogLevel.Information, Message = "Workload {WorkloadId} {State}: {Reason}")]
    private static partial void LogFinished(ILogger logger, string workloadId, string state, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Workload {WorkloadId}: the kernel refused to revoke epoch {Epoch}: {Refusal}")]
    private static partial void LogRevokeRefused(ILogger logger, string workloadId, long epoch, string refusal);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Workload {WorkloadId}: the kernel refused to finish it: {Refusal}")]
    private static partial void LogFinishRefused(ILogger logger, string workloadId, string refusal);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Workload {WorkloadId} was changed by another writer; continuing from the stored state")]
    private static partial void LogConflict(ILogger logger, string workloadId);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Usage of workload {WorkloadId} epoch {Epoch} from {Provider} refused: not the current lease holder (or already recorded)")]
    private static partial void LogUsageRefused(ILogger logger, string workloadId, long epoch, string provider);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Access receipt of workload {WorkloadId} epoch {Epoch} from {Provider} refused: not the current lease holder")]
    private static partial void LogReceiptRefused(ILogger logger, string workloadId, long epoch, string provider);

    [LoggerMessage(Level = LogLevel.Information, Message = "Checkpoint of workload {WorkloadId} epoch {Epoch} from {Provider} refused: not the current copy")]
    private static partial void LogCheckpointRefused(ILogger logger, string workloadId, long epoch, string provider);

    [LoggerMessage(Level = LogLevel.Information, Message = "Workload {WorkloadId}: revoking epoch {Epoch} ({Reason})")]
    private static partial void LogRevoking(ILogger logger, string workloadId, long epoch, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Workload {WorkloadId}: report {Report} ignored: {Why}")]
    private static partial void LogReportIgnored(ILogger logger, string workloadId, string report, string why);

    [LoggerMessage(Level = LogLevel.Error, Message = "Workload {WorkloadId}: billing failed; it is tried again later")]
    private static partial void LogBillingFailed(ILogger logger, string workloadId, Exception exception);

    [LoggerMessage(Level = LogLevel.Information, Message = "Provider {Provider} drained: {Released} workload leases released, {Abandoned} abandoned")]
    private static partial void LogOwnerDrained(ILogger logger, string provider, int released, int abandoned);
}

/// <summary>Something for the supervisor's loop.</summary>
internal abstract record Command
{
    /// <summary>Tells a waiting caller the command failed.</summary>
    public virtual void Fail(Exception exception)
    {
    }
}

internal sealed record TickCommand : Command;

internal sealed record PlanCommand(WorkloadSpec Spec, string? Pinned, IReadOnlySet<string>? KeyHolders, TaskCompletionSource<(PlacementPlan?, string?)> Done) : Command
{
    public override void Fail(Exception exception) => Done.TrySetException(exception);
}

internal sealed record SubmitCommand(
    string Id, WorkloadSpec Spec, PlacementPlan Plan, WorkloadTerms Terms, IReadOnlyDictionary<string, string> SealedKeys, WorkloadSaveHook? Payment,
    TaskCompletionSource<SubmitOutcome> Done) : Command
{
    public override void Fail(Exception exception) => Done.TrySetException(exception);
}

internal sealed record ConsumerCommand(string WorkloadId, WorkloadInput Input, long PaidMsat, WorkloadSaveHook? Payment, TaskCompletionSource<CommandOutcome> Done) : Command
{
    public override void Fail(Exception exception) => Done.TrySetException(exception);
}

internal sealed record HeartbeatCommand(ProviderSession Session, WorkloadHeartbeat Heartbeat) : Command;

/// <summary>A copy exited or was lost (an input for the workload's machine).</summary>
internal sealed record ReportCommand(string WorkloadId, WorkloadInput Input) : Command;

internal sealed record UsageCommand(string ProviderId, UsageRecord Record, SignedUsageRecord Signed) : Command;

internal sealed record ReceiptCommand(string ProviderId, string WorkloadId, long Epoch, string Sealed) : Command;

internal sealed record CheckpointCommand(string ProviderId, string WorkloadId, long Epoch, byte[] Data, string Sha256) : Command;

internal sealed record ProviderUpCommand(ProviderSession Session) : Command;

internal sealed record ProviderGoneCommand(ProviderSession Session) : Command;
