using System.Diagnostics.Metrics;
using System.Threading.Channels;
using Coinop.Core.Cluster;
using Coinop.Core.Workloads;
using Coinop.Market.Gateway;
using Coinop.Market.Hosting;
using Coinop.Storage.Cluster;
using Coinop.Storage.Work;
using Coinop.Storage.Workloads;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using static Coinop.Core.Workloads.WorkloadEffect;
using static Coinop.Core.Workloads.WorkloadInput;

namespace Coinop.Market.Workloads;

/// <summary>
/// Supervises every open workload of this market node on one loop, one command at a time: consumers' submits, cancels and
/// top-ups (<see cref="ConsumerWorkloadCommands"/>), what providers report (<see cref="ProviderWorkloadEvents"/>) and
/// ticks of time. Each becomes an input of a workload's machine, driven by <see cref="WorkloadDriver"/>: the decision is
/// saved first (<see cref="WorkloadPersistence"/>), then its effects run in the machine's order
/// (<see cref="WorkloadEffectInterpreter"/>) — a revoke is confirmed by the store before the promote or respawn it makes
/// room for is even decided. Money follows through <see cref="WorkloadSettlement"/>: time consumed is settled to the
/// serving providers periodically and before the set of them changes, and the rest is refunded when the workload ends.
/// <para>After a market restart the open workloads are loaded back, silence is measured from no earlier than the end of
/// the failover TTL minus evict-after (providers get that long to come back before anything is evicted), and revokes or
/// placements that were under way are finished.</para>
/// </summary>
public sealed class WorkloadSupervisor : BackgroundService
{
    public const string MeterName = WorkloadMetrics.MeterName;

    private readonly IWorkloadStore _store;
    private readonly TimeProvider _time;
    private readonly WorkloadClock _clock;
    private readonly ILogger<WorkloadSupervisor> _logger;
    private readonly WorkloadSupervisorSettings _settings;
    private readonly Channel<Command> _commands = Channel.CreateUnbounded<Command>(new UnboundedChannelOptions { SingleReader = true });
    private readonly TaskCompletionSource _loaded = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly OpenWorkloads _open = new();
    private readonly WorkloadSettlement _settlement;
    private readonly WorkloadDriver _driver;
    private readonly ConsumerWorkloadCommands _consumers;
    private readonly ProviderWorkloadEvents _providers;
    private readonly Cluster.WorkloadSupervision _supervision;
    private readonly ProviderDirectory _directory;
    private readonly IProviderLinkStore _links;
    private readonly WorkloadMetrics _metrics;
    private readonly ProviderCommandQuota _quota;
    private readonly DeliveryTrust _trust;
    private readonly Lock _quotaGate = new();
    private readonly ConfirmedLinks _confirmed = new();
    private long _queuedByProviders;
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
        ILogger<WorkloadSupervisor> logger,
        Cluster.WorkloadSupervision supervision,
        IProviderLinkStore links)
    {
        _supervision = supervision;
        _links = links;
        _directory = directory;
        _store = store;
        _time = time;
        _clock = new WorkloadClock(time);
        _logger = logger;
        _settings = WorkloadSupervisorSettings.From(options);
        var metrics = new WorkloadMetrics(meters);
        _metrics = metrics;
        _quota = new ProviderCommandQuota(options.ProviderCommandQueueLimit);
        _settlement = new WorkloadSettlement(billing, _settings.SettleInterval, logger);
        var persistence = new WorkloadPersistence(store, _open, _settlement, _clock, logger);
        _trust = new DeliveryTrust(_settings.Trust);
        var placement = new PlacementCandidates(_open, directory, _settings, _trust, _clock);
        var effects = new WorkloadEffectInterpreter(work, store, checkpoints, directory, _settings, placement, metrics, logger);
        _driver = new WorkloadDriver(_open, persistence, effects, logs, _settings.Timings, _clock, logger);
        _consumers = new ConsumerWorkloadCommands(_open, _driver, work, store, placement, metrics, _clock, logger);
        _providers = new ProviderWorkloadEvents(_open, _driver, effects, work, usage, receipts, checkpoints, metrics, logger);
    }

    public WorkloadTimings Timings => _settings.Timings;

    public TimeSpan CheckpointInterval => _settings.CheckpointInterval;

    public long MaxCheckpointBytes => _settings.MaxCheckpointBytes;

    /// <summary>True when <paramref name="providerId"/> runs the copy of <paramref name="workloadId"/> allowed to run now, at <paramref name="epoch"/>.</summary>
    public bool IsCurrentCopy(string workloadId, string providerId, long epoch) => _open.IsCurrentCopy(workloadId, providerId, epoch);

    /// <summary>Where a workload would go now, and at what price (nothing is reserved yet).</summary>
    public Task<(PlacementPlan? Plan, string? Problem)> PlanAsync(WorkloadSpec spec, string? pinned, IReadOnlySet<string>? keyHolders, CancellationToken cancellationToken) =>
        AskAsync<(PlacementPlan?, string?)>(done => new PlanCommand(spec, pinned, keyHolders, done), cancellationToken);

    /// <summary>
    /// Starts a paid-for workload on its planned providers, if they still have room; <paramref name="payment"/> (the
    /// payment's commit) runs in the transaction that stores it.
    /// </summary>
    public Task<SubmitOutcome> SubmitAsync(string id, WorkloadSpec spec, PlacementPlan plan, WorkloadTerms terms, IReadOnlyDictionary<string, string> sealedKeys,
        WorkloadSaveHook? payment, CancellationToken cancellationToken) =>
        AskAsync<SubmitOutcome>(done => new SubmitCommand(id, spec, plan, terms, sealedKeys, payment, done), cancellationToken);

    public Task<CommandOutcome> CancelAsync(string id, CancellationToken cancellationToken) =>
        AskAsync<CommandOutcome>(done => new ConsumerCommand(id, new Cancel("consumer"), 0, null, done), cancellationToken);

    /// <summary>Extends the lease; <paramref name="payment"/> runs in the transaction that saves the longer lease.</summary>
    public Task<CommandOutcome> TopUpAsync(string id, TimeSpan extra, long paidMsat, WorkloadSaveHook? payment, CancellationToken cancellationToken) =>
        AskAsync<CommandOutcome>(done => new ConsumerCommand(id, new TopUp(extra), paidMsat, payment, done), cancellationToken);

    /// <summary>Queues a provider's session ending (never refused: it must be seen once per session).</summary>
    /// <remarks>On a node that does not supervise the workloads nothing is queued: its providers are sent to the one that does.</remarks>
    internal void Post(ProviderGoneCommand command)
    {
        if (_supervision.IsHeld)
        {
            _commands.Writer.TryWrite(command);
        }
    }

    /// <summary>
    /// Queues something <paramref name="providerId"/> sent (from its session's reader loop; never blocks). False when
    /// the provider already has <see cref="ProviderCommandQuota.Limit"/> commands queued: it is flooding, its session
    /// must be closed, and what it still has queued is dropped unread. On a node that does not supervise the workloads
    /// nothing is queued (true: the provider is not at fault; it is sent to the node that supervises).
    /// </summary>
    internal bool TryPost(string providerId, long linkEpoch, Command command)
    {
        if (!_supervision.IsHeld)
        {
            return true;
        }

        lock (_quotaGate)
        {
            if (!_quota.TryAdmit(providerId))
            {
                _metrics.Flooded.Add(1);
                return false;
            }
        }

        _commands.Writer.TryWrite(new QueuedByProvider(providerId, linkEpoch, command, Interlocked.Increment(ref _queuedByProviders)));
        return true;
    }

    /// <summary>The loop: loads the open workloads, then handles commands one at a time until the market stops.</summary>
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            // One node at a time supervises (the single writer across nodes); the others wait here until they take over.
            await _supervision.Held.WaitAsync(stoppingToken);
            await LoadAsync(stoppingToken);
            foreach (var session in _directory.Snapshot.Where(s => s.WorkloadCapacity is not null))
            {
                TryPost(session.ProviderId, session.LinkEpoch, new ProviderUpCommand(session)); // linked before this node took over: their sessions are news to the supervisor
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            WorkloadSupervisorLog.LoadFailed(_logger, ex);
            throw;
        }

        using var ticker = _time.CreateTimer(_ => QueueTick(), null, _settings.TickInterval, _settings.TickInterval);
        try
        {
            await foreach (var command in _commands.Reader.ReadAllAsync(stoppingToken))
            {
                try
                {
                    await DispatchAsync(command, stoppingToken);
                }
                catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
                {
                    // One bad command must not stop every workload: the machine's next input re-decides from the stored state.
                    WorkloadSupervisorLog.CommandFailed(_logger, command.GetType().Name, ex);
                    command.Fail(ex);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>Queues a command a caller waits for, once the open workloads are loaded.</summary>
    private async Task<T> AskAsync<T>(Func<TaskCompletionSource<T>, Command> make, CancellationToken cancellationToken)
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
        var now = _clock.Now();
        // No eviction before the failover TTL: providers that were online get that long to reconnect after a restart.
        var contactFloor = now + _settings.FailoverTtl - Timings.EvictAfter;
        foreach (var s in stored)
        {
            var w = s.Workload;
            var entry = new OpenWorkload(s with { Workload = w.LastContact < contactFloor ? w with { LastContact = contactFloor } : w });
            _open.Add(entry);
            _open.UpdateCurrent(entry);
        }

        _loaded.TrySetResult();
        WorkloadSupervisorLog.Loaded(_logger, _open.Count);
        await _settlement.RecoverAsync(now, cancellationToken);
        foreach (var entry in _open.Snapshot())
        {
            // Finish what a previous run left half-way: a revoke not yet confirmed, a respawn not yet placed.
            var w = entry.Workload;
            if (w.Revoking is { } revoking)
            {
                await _driver.PerformAsync(entry, [new RevokeLease(revoking.Epoch)], cancellationToken);
            }
            else if (w is { State: WorkloadState.Respawning, Provider: null })
            {
                await _driver.PerformAsync(entry, [new PlaceCopy(w.Epoch, w.Attempts, w.History.LastOrDefault(h => h.Provider is not null)?.Provider ?? "")], cancellationToken);
            }
        }
    }

    private async Task DispatchAsync(Command command, CancellationToken ct)
    {
        switch (command)
        {
            case QueuedByProvider queued:
                bool obey;
                lock (_quotaGate)
                {
                    obey = _quota.Take(queued.ProviderId);
                }

                if (obey && await FromCurrentLinkAsync(queued, ct))
                {
                    await DispatchAsync(queued.Command, ct);
                }
                else
                {
                    _metrics.FloodDropped.Add(1);
                }

                break;
            case TickCommand:
                Volatile.Write(ref _tickQueued, 0);
                await TickAsync(ct);
                break;
            case PlanCommand plan:
                plan.Done.TrySetResult(_consumers.Plan(plan));
                break;
            case SubmitCommand submit:
                submit.Done.TrySetResult(await _consumers.SubmitAsync(submit, ct));
                break;
            case ConsumerCommand consumer:
                consumer.Done.TrySetResult(await _consumers.ApplyAsync(consumer, ct));
                break;
            case HeartbeatCommand heartbeat:
                await _providers.HeartbeatAsync(heartbeat.Session, heartbeat.Heartbeat, ct);
                break;
            case ReportCommand report:
                await _providers.ReportAsync(report, ct);
                break;
            case UsageCommand usage:
                await _providers.UsageAsync(usage, ct);
                break;
            case ReceiptCommand receipt:
                await _providers.ReceiptAsync(receipt, ct);
                break;
            case CheckpointCommand checkpoint:
                await _providers.CheckpointAsync(checkpoint, ct);
                break;
            case ProviderUpCommand up:
                await _providers.ProviderUpAsync(up.Session, ct);
                break;
            case ProviderGoneCommand gone:
                _confirmed.Forget(gone.Session.ProviderId);
                await _providers.ProviderGoneAsync(gone.Session, ct);
                break;
        }
    }

    /// <summary>
    /// A provider's reports (copy states, usage, receipts, checkpoints) count only over its current link: a link the
    /// provider replaced (linked again, here or on another node, at a newer epoch) writes nothing more, even before this
    /// node noticed and closed it. Read from the store after the report arrived (one read answers for the reports of that
    /// link queued before it: <see cref="ConfirmedLinks"/>); epochs only grow, so nothing moves the link back between this
    /// check and the supervisor's writes.
    /// </summary>
    private async ValueTask<bool> FromCurrentLinkAsync(QueuedByProvider queued, CancellationToken ct)
    {
        if (queued.LinkEpoch == 0 || _confirmed.Covers(queued.ProviderId, queued.LinkEpoch, queued.Sequence))
        {
            return true;
        }

        var upTo = Interlocked.Read(ref _queuedByProviders); // every message queued so far arrived before this read
        if (LinkRules.IsCurrent(await _links.FindAsync(queued.ProviderId, ct), queued.LinkEpoch))
        {
            _confirmed.Confirmed(queued.ProviderId, queued.LinkEpoch, upTo);
            return true;
        }

        _confirmed.Forget(queued.ProviderId);
        WorkloadSupervisorLog.RevokedLinkIgnored(_logger, queued.Command.GetType().Name, queued.ProviderId, queued.LinkEpoch);
        return false;
    }

    /// <summary>Time passed: each open workload's deadlines, then its settlement when one is due, then the billing recovery sweep.</summary>
    private async Task TickAsync(CancellationToken ct)
    {
        foreach (var entry in _open.Snapshot())
        {
            await _driver.ApplyAsync(entry, new Tick(), ct);
            var now = _clock.Now();
            if (_open.Contains(entry.Id) && _settlement.Due(entry, now))
            {
                await _settlement.SettleAsync(entry, now, ct);
            }
        }

        _trust.Observe(_open.All.Select(e => e.Workload), _clock.Now());
        await _settlement.RecoverAsync(_clock.Now(), ct);
    }
}
