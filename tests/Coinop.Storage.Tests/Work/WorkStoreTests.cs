using Coinop.Core.Work;
using Coinop.Storage.Work;
using Dapper;
using Microsoft.Extensions.Time.Testing;

namespace Coinop.Storage.Tests.Work;

public class WorkStoreTests
{
    private static readonly LeaseTimings Timings = new(TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(10));
    private static readonly LeaseOwner A = new("provider-a", "boot-1");
    private static readonly LeaseOwner B = new("provider-b", "boot-1");

    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 25, 12, 0, 0, TimeSpan.Zero));

    private async Task<(TestStore Store, WorkStore Work)> CreateAsync(SqlDialect dialect)
    {
        var store = await Stores.CreateAsync(dialect, TestContext.Current.CancellationToken);
        return (store, new WorkStore(store.Database, _time));
    }

    private static async Task<WorkItem> RegisterAsync(WorkStore work, string id, RecoveryDisposition disposition, DateTimeOffset? deadline = null)
    {
        var d = await work.RegisterAsync(new WorkRegistration(id, WorkKinds.InferenceJob, disposition, deadline), TestContext.Current.CancellationToken);
        Assert.True(d.Accepted, d.Refusal?.ToString());
        return d.Item!;
    }

    private static async Task<WorkLease> ClaimAsync(WorkStore work, string id, LeaseOwner owner)
    {
        var d = await work.ClaimAsync(id, owner, Timings, TestContext.Current.CancellationToken);
        Assert.True(d.Accepted, d.Refusal?.ToString());
        return d.Item!.Lease!;
    }

    private static async Task<WorkItem> ItemAsync(WorkStore work, string id) =>
        (await work.ObserveAsync(id, TestContext.Current.CancellationToken))!.Item;

    [Theory]
    [MemberData(nameof(Stores.Dialects), MemberType = typeof(Stores))]
    public async Task A_job_is_claimed_started_renewed_and_completed_with_its_history(SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        var (store, work) = await CreateAsync(dialect);
        await using var _ = store;
        await RegisterAsync(work, "job-1", RecoveryDisposition.OwnerBound);
        Assert.Equal(WorkRefusal.AlreadyRegistered,
            (await work.RegisterAsync(new WorkRegistration("job-1", "other", RecoveryDisposition.Rerunnable), ct)).Refusal);
        Assert.Equal(WorkRefusal.Invalid, (await work.RegisterAsync(new WorkRegistration("job-2", "x", default), ct)).Refusal);

        var lease = await ClaimAsync(work, "job-1", A);
        Assert.Equal(1, lease.Fence);
        Assert.True((await work.RecordStartedAsync("job-1", lease.Proof, ct)).Accepted);
        _time.Advance(TimeSpan.FromSeconds(20));
        var renewed = await work.RenewAsync("job-1", lease.Proof, Timings, ct);
        Assert.Equal(_time.GetUtcNow() + Timings.Ttl, renewed.Item!.Lease!.ExpiresAt);
        Assert.True((await work.WriteProgressAsync("job-1", lease.Proof, "{\"tokens\":10}", ct)).Accepted);
        Assert.True((await work.WriteUsageAsync("job-1", lease.Proof, "{\"cpu_core_seconds\":2}", ct)).Accepted);
        var done = await work.CompleteAsync("job-1", lease.Proof, WorkTerminalKind.Completed, "ok", ct);
        Assert.True(done.Accepted);

        var stored = await ItemAsync(work, "job-1");
        Assert.Equal(done.Item, stored); // what the kernel decided is exactly what the row holds
        Assert.Null(stored.Lease);
        Assert.Equal("{\"tokens\":10}", stored.Progress);
        Assert.Equal(A, stored.Started!.Owner);

        var history = await work.HistoryAsync("job-1", ct);
        Assert.Equal(
            [
                (WorkEventKinds.Registered, 0L, WorkWriters.Market), (WorkEventKinds.Claimed, 1L, A.OwnerId), (WorkEventKinds.Started, 1L, A.OwnerId),
                (WorkEventKinds.Progress, 1L, A.OwnerId), (WorkEventKinds.Usage, 1L, A.OwnerId), (WorkEventKinds.Completed, 1L, A.OwnerId),
            ],
            history.Select(e => (e.Kind, e.Fence, e.Writer)));
        Assert.Equal("{\"cpu_core_seconds\":2}", history[4].Detail);
        Assert.Equal(A, history[1].Owner);
    }

    [Theory]
    [MemberData(nameof(Stores.Dialects), MemberType = typeof(Stores))]
    public async Task Racing_claims_have_exactly_one_winner_per_fence(SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        var (store, work) = await CreateAsync(dialect);
        await using var _ = store;
        await RegisterAsync(work, "race", RecoveryDisposition.Rerunnable);

        for (var round = 1; round <= 3; round++)
        {
            var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var racing = Enumerable.Range(0, 16).Select(i => Task.Run(async () =>
            {
                await start.Task;
                return await work.ClaimAsync("race", new LeaseOwner($"node-{i}", "1"), Timings, ct);
            }, ct)).ToList();
            start.SetResult();
            var outcomes = await Task.WhenAll(racing);

            var winners = outcomes.Where(o => o.Accepted).ToList();
            Assert.Single(winners);
            Assert.Equal(round, winners[0].Item!.Fence);
            Assert.All(outcomes.Where(o => !o.Accepted), o => Assert.Equal(WorkRefusal.Busy, o.Refusal));
            Assert.Equal(winners[0].Item!.Lease!.Owner, (await ItemAsync(work, "race")).Lease!.Owner);
            _time.Advance(Timings.Ttl); // the winner's lease lapses; the next round races for the next fence
        }

        var claims = (await work.HistoryAsync("race", ct)).Where(e => e.Kind == WorkEventKinds.Claimed).Select(e => e.Fence);
        Assert.Equal([1L, 2L, 3L], claims);
    }

    [Theory]
    [MemberData(nameof(Stores.Dialects), MemberType = typeof(Stores))]
    public async Task Racing_grants_of_a_revoked_fence_have_exactly_one_winner(SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        var (store, work) = await CreateAsync(dialect);
        await using var _ = store;
        await RegisterAsync(work, "wl", RecoveryDisposition.Rerunnable);
        var primary = await ClaimAsync(work, "wl", A);
        var revoked = await work.RevokeAsync("wl", primary.Fence, "primary evicted", ct);
        Assert.Equal(2, revoked.Item!.Fence);
        Assert.False((await work.RevokeAsync("wl", primary.Fence, "retried", ct)).Changed); // idempotent

        var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var racing = Enumerable.Range(0, 8).Select(i => Task.Run(async () =>
        {
            await start.Task;
            return await work.GrantAsync("wl", 2, new LeaseOwner($"standby-{i}", "1"), Timings, ct);
        }, ct)).ToList();
        start.SetResult();
        var outcomes = await Task.WhenAll(racing);
        Assert.Single(outcomes, o => o.Accepted);
        Assert.All(outcomes.Where(o => !o.Accepted), o => Assert.Equal(WorkRefusal.NotRevoked, o.Refusal));
        Assert.Equal(2, (await ItemAsync(work, "wl")).Lease!.Fence);

        // The revoked primary is a revenant now.
        Assert.Equal(WorkRefusal.StaleFence, (await work.RenewAsync("wl", primary.Proof, Timings, ct)).Refusal);
    }

    [Theory]
    [MemberData(nameof(Stores.Dialects), MemberType = typeof(Stores))]
    public async Task Revenant_writes_change_nothing(SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        var (store, work) = await CreateAsync(dialect);
        await using var _ = store;
        await RegisterAsync(work, "job", RecoveryDisposition.Rerunnable);
        var old = await ClaimAsync(work, "job", A);
        _time.Advance(Timings.Ttl);
        var current = await ClaimAsync(work, "job", B);
        await work.WriteProgressAsync("job", current.Proof, "mine", ct);

        var before = await ItemAsync(work, "job");
        var eventsBefore = (await work.HistoryAsync("job", ct)).Count;
        Assert.Equal(WorkRefusal.StaleFence, (await work.RenewAsync("job", old.Proof, Timings, ct)).Refusal);
        Assert.Equal(WorkRefusal.StaleFence, (await work.RecordStartedAsync("job", old.Proof, ct)).Refusal);
        Assert.Equal(WorkRefusal.StaleFence, (await work.WriteProgressAsync("job", old.Proof, "revenant", ct)).Refusal);
        Assert.Equal(WorkRefusal.StaleFence, (await work.WriteUsageAsync("job", old.Proof, "revenant", ct)).Refusal);
        Assert.Equal(WorkRefusal.StaleFence, (await work.CompleteAsync("job", old.Proof, WorkTerminalKind.Completed, null, ct)).Refusal);
        // Right fence, wrong token: a forged proof is no better.
        Assert.Equal(WorkRefusal.NotLeaseHolder, (await work.CompleteAsync("job", current.Proof with { Token = old.Token }, WorkTerminalKind.Failed, null, ct)).Refusal);

        Assert.Equal(before, await ItemAsync(work, "job"));
        Assert.Equal(eventsBefore, (await work.HistoryAsync("job", ct)).Count);
    }

    [Theory]
    [MemberData(nameof(Stores.Dialects), MemberType = typeof(Stores))]
    public async Task Terminals_are_never_overwritten(SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        var (store, work) = await CreateAsync(dialect);
        await using var _ = store;
        await RegisterAsync(work, "job", RecoveryDisposition.OwnerBound);
        var lease = await ClaimAsync(work, "job", A);
        await work.RecordStartedAsync("job", lease.Proof, ct);
        Assert.True((await work.FinishAsync("job", WorkTerminalKind.Cancelled, "consumer cancelled", ct)).Accepted);
        var terminal = await ItemAsync(work, "job");

        _time.Advance(TimeSpan.FromHours(1));
        Assert.Equal(WorkRefusal.Terminal, (await work.CompleteAsync("job", lease.Proof, WorkTerminalKind.Completed, null, ct)).Refusal);
        Assert.Equal(WorkRefusal.Terminal, (await work.FinishAsync("job", WorkTerminalKind.Completed, null, ct)).Refusal);
        Assert.Equal(WorkRefusal.Terminal, (await work.ClaimAsync("job", B, Timings, ct)).Refusal);
        Assert.Equal(WorkRefusal.Terminal, (await work.RequestAbandonAsync("job", "operator", null, ct)).Refusal);
        Assert.Equal(WorkRefusal.Terminal, (await work.RevokeAsync("job", terminal.Fence, "x", ct)).Refusal);
        await work.SweepAsync([new DeathEvidence(A, "gone")], 100, ct);
        await work.DrainOwnerAsync(A, ct);
        Assert.Equal(terminal, await ItemAsync(work, "job"));

        // The schema itself refuses a lease on a terminal row and stray abandon evidence.
        await Assert.ThrowsAnyAsync<Exception>(() => store.Database.WriteAsync((c, t) => c.ExecuteAsync(new CommandDefinition(
            "UPDATE work_items SET lease_owner_id = 'x', lease_incarnation_id = 'x', lease_token = 'x', lease_claimed_at = 0, lease_expires_at = 1 WHERE id = 'job'",
            transaction: t, cancellationToken: ct)), ct));
        await Assert.ThrowsAnyAsync<Exception>(() => store.Database.WriteAsync((c, t) => c.ExecuteAsync(new CommandDefinition(
            "UPDATE work_items SET abandon_writer = 'sweep' WHERE id = 'job'", transaction: t, cancellationToken: ct)), ct));
    }

    [Theory]
    [MemberData(nameof(Stores.Dialects), MemberType = typeof(Stores))]
    public async Task The_sweep_follows_each_disposition(SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        var (store, work) = await CreateAsync(dialect);
        await using var _ = store;
        var t0 = _time.GetUtcNow();

        await RegisterAsync(work, "rerun", RecoveryDisposition.Rerunnable);
        await ClaimAsync(work, "rerun", A);
        await RegisterAsync(work, "bound-silent", RecoveryDisposition.OwnerBound);
        await work.RecordStartedAsync("bound-silent", (await ClaimAsync(work, "bound-silent", A)).Proof, ct);
        await RegisterAsync(work, "bound-dead", RecoveryDisposition.OwnerBound);
        await work.RecordStartedAsync("bound-dead", (await ClaimAsync(work, "bound-dead", B)).Proof, ct);
        await RegisterAsync(work, "bound-abandon", RecoveryDisposition.OwnerBound);
        await work.RecordStartedAsync("bound-abandon", (await ClaimAsync(work, "bound-abandon", A)).Proof, ct);
        await work.RequestAbandonAsync("bound-abandon", "consumer", "gave up", ct);
        await RegisterAsync(work, "deadline", RecoveryDisposition.Rerunnable, t0.AddMinutes(10));
        await ClaimAsync(work, "deadline", A);
        await RegisterAsync(work, "external", RecoveryDisposition.ExternallyOwned);
        await RegisterAsync(work, "external-abandon", RecoveryDisposition.ExternallyOwned);
        await work.RequestAbandonAsync("external-abandon", "operator", "host retired", ct);

        // Leases still live: only the externally owned request is reconciled (it has no lease to wait out).
        var early = await work.SweepAsync([], 100, ct);
        Assert.Equal(["external-abandon"], early.Terminalised);
        Assert.Empty(early.Released);

        _time.Advance(TimeSpan.FromMinutes(5)); // every lease lapsed; no deadline yet
        var report = await work.SweepAsync([new DeathEvidence(B, "agent came back as boot-2")], 100, ct);
        Assert.Equal(["bound-abandon", "bound-dead"], report.Terminalised.Order());
        Assert.Equal(["deadline", "rerun"], report.Released.Order());
        Assert.Equal(["bound-silent"], report.Lapsed);

        Assert.Equal(AbandonWriter.ReconciledRequest, (await ItemAsync(work, "bound-abandon")).Terminal!.Abandon!.Writer);
        var dead = (await ItemAsync(work, "bound-dead")).Terminal!.Abandon!;
        Assert.Equal((AbandonWriter.Sweep, B, "agent came back as boot-2"), (dead.Writer, dead.Owner, dead.Evidence));
        var silent = await work.ObserveAsync("bound-silent", ct);
        Assert.Null(silent!.Item.Terminal); // elapsed time alone never terminalises
        Assert.True(silent.LeaseLapsed);
        Assert.Equal(A, silent.Holder);
        Assert.Null((await ItemAsync(work, "external")).Terminal);

        var rerun = await ClaimAsync(work, "rerun", B); // released rerunnable work is claimable again, at a new fence
        Assert.Equal(3, rerun.Fence);

        _time.Advance(TimeSpan.FromMinutes(5));
        Assert.Equal(["deadline"], (await work.SweepAsync([], 100, ct)).Terminalised);
        Assert.Equal(WorkKernel.DeadlinePassedReason, (await ItemAsync(work, "deadline")).Terminal!.Reason);

        var open = await work.ListOpenAsync(WorkKinds.InferenceJob, 100, ct);
        Assert.Equal(["bound-silent", "external", "rerun"], open.Select(o => o.Item.Id).Order());
        Assert.Equal(3, (await work.ListOpenAsync(null, 100, ct)).Count);
        Assert.Empty(await work.ListOpenAsync(WorkKinds.Workload, 100, ct));
    }

    [Theory]
    [MemberData(nameof(Stores.Dialects), MemberType = typeof(Stores))]
    public async Task Owner_drain_abandons_its_started_work_releases_the_rest_and_defers_foreign_leases(SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        var (store, work) = await CreateAsync(dialect);
        await using var _ = store;

        await RegisterAsync(work, "mine-started", RecoveryDisposition.OwnerBound);
        await work.RecordStartedAsync("mine-started", (await ClaimAsync(work, "mine-started", A)).Proof, ct);
        await RegisterAsync(work, "mine-rerunnable", RecoveryDisposition.Rerunnable);
        var rerunnable = await ClaimAsync(work, "mine-rerunnable", A);
        await RegisterAsync(work, "mine-unstarted", RecoveryDisposition.OwnerBound);
        await ClaimAsync(work, "mine-unstarted", A);
        await RegisterAsync(work, "theirs", RecoveryDisposition.OwnerBound);
        await work.RecordStartedAsync("theirs", (await ClaimAsync(work, "theirs", B)).Proof, ct);
        // Rerunnable work A started earlier but B now holds: A's drain must not touch it.
        await RegisterAsync(work, "taken-over", RecoveryDisposition.Rerunnable);
        await work.RecordStartedAsync("taken-over", (await ClaimAsync(work, "taken-over", A)).Proof, ct);
        _time.Advance(Timings.Ttl);
        await ClaimAsync(work, "taken-over", B);

        var report = await work.DrainOwnerAsync(new LeaseOwner(A.OwnerId, "boot-2"), ct);
        Assert.Equal(["mine-started"], report.Abandoned);
        Assert.Equal(["mine-rerunnable", "mine-unstarted"], report.Released);
        Assert.Empty(report.Deferred);

        var abandoned = (await ItemAsync(work, "mine-started")).Terminal!.Abandon!;
        Assert.Equal((AbandonWriter.OwnerDrain, A), (abandoned.Writer, abandoned.Owner));
        Assert.Equal(WorkRefusal.StaleFence, (await work.WriteUsageAsync("mine-rerunnable", rerunnable.Proof, "late", ct)).Refusal);
        Assert.Equal(2, (await ClaimAsync(work, "mine-rerunnable", B)).Fence - 1); // released at fence 2, claimed at 3
        Assert.Null((await ItemAsync(work, "theirs")).Terminal);
        Assert.Equal(B, (await ItemAsync(work, "taken-over")).Lease!.Owner);
    }

    [Theory]
    [MemberData(nameof(Stores.Dialects), MemberType = typeof(Stores))]
    public async Task Concurrent_claims_renewals_sweeps_and_revokes_keep_one_holder_per_fence(SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        var (store, work) = await CreateAsync(dialect);
        await using var _ = store;
        await RegisterAsync(work, "busy", RecoveryDisposition.Rerunnable);

        var owners = Enumerable.Range(0, 6).Select(i => new LeaseOwner($"node-{i}", "1")).ToArray();
        await Task.WhenAll(owners.Select((owner, i) => Task.Run(async () =>
        {
            LeaseProof? mine = null;
            for (var step = 0; step < 25; step++)
            {
                WorkDecision? d = null;
                switch ((step + i) % 5)
                {
                    case 0:
                        await work.SweepAsync([], 10, ct);
                        break;
                    case 1 when mine is not null:
                        d = await work.RevokeAsync("busy", mine.Fence, "test", ct);
                        break;
                    case 2 when mine is not null:
                        d = await work.RenewAsync("busy", mine, Timings, ct);
                        break;
                    default:
                        d = await work.ClaimAsync("busy", owner, Timings, ct);
                        break;
                }

                if (d is { Accepted: true, Item.Lease: { } lease } && lease.Owner == owner)
                {
                    mine = lease.Proof;
                }

                if (i == 0)
                {
                    _time.Advance(TimeSpan.FromSeconds(7)); // leases lapse now and then while the others race
                }
            }
        }, ct)));

        // Every fence that was ever held was held by one owner, and fences only grew.
        var history = await work.HistoryAsync("busy", ct);
        var holders = history.Where(e => e.Kind == WorkEventKinds.Claimed).GroupBy(e => e.Fence).ToList();
        Assert.NotEmpty(holders);
        Assert.All(holders, g => Assert.Single(g));
        var fences = history.Select(e => e.Fence).ToList();
        Assert.Equal(fences.Order(), fences);
        Assert.Equal(fences[^1], (await ItemAsync(work, "busy")).Fence);
    }
}
