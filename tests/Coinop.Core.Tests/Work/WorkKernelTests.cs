using Coinop.Core.Work;

namespace Coinop.Core.Tests.Work;

public class WorkKernelTests
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);
    private static readonly LeaseTimings Timings = LeaseTimings.Default; // 30 s ttl
    private static readonly LeaseOwner A = new("provider-a", "boot-1");
    private static readonly LeaseOwner A2 = new("provider-a", "boot-2");
    private static readonly LeaseOwner B = new("provider-b", "boot-1");

    private static WorkItem New(RecoveryDisposition disposition, DateTimeOffset? deadline = null) =>
        WorkKernel.Register(new WorkRegistration("w1", WorkKinds.InferenceJob, disposition, deadline), T0).Item!;

    private static WorkItem Claimed(WorkItem item, LeaseOwner owner, DateTimeOffset at, string token = "tok")
    {
        var d = WorkKernel.Claim(item, owner, token, Timings, at);
        Assert.True(d.Accepted, d.Refusal?.ToString());
        return d.Item!;
    }

    private static WorkItem Started(WorkItem item, DateTimeOffset at)
    {
        var d = WorkKernel.RecordStarted(item, item.Lease!.Proof, at);
        Assert.True(d.Accepted);
        return d.Item!;
    }

    [Fact]
    public void Registration_needs_a_declared_disposition_and_a_valid_kind()
    {
        Assert.Equal(WorkRefusal.Invalid, WorkKernel.Register(new WorkRegistration("w", "job", default), T0).Refusal);
        Assert.Equal(WorkRefusal.Invalid, WorkKernel.Register(new WorkRegistration("w", "Bad Kind", RecoveryDisposition.Rerunnable), T0).Refusal);
        Assert.Equal(WorkRefusal.Invalid, WorkKernel.Register(new WorkRegistration("", "job", RecoveryDisposition.Rerunnable), T0).Refusal);
        var ok = WorkKernel.Register(new WorkRegistration("w", "job", RecoveryDisposition.OwnerBound), T0);
        Assert.Equal(0, ok.Item!.Fence);
        Assert.Equal(WorkEventKinds.Registered, ok.Transition!.Kind);
    }

    [Fact]
    public void A_claim_bumps_the_fence_and_a_live_foreign_lease_is_busy()
    {
        var item = Claimed(New(RecoveryDisposition.Rerunnable), A, T0);
        Assert.Equal(1, item.Fence);
        Assert.Equal(1, item.Lease!.Fence);
        Assert.Equal(T0 + Timings.Ttl, item.Lease.ExpiresAt);

        var busy = WorkKernel.Claim(item, B, "t2", Timings, T0.AddSeconds(29));
        Assert.Equal(WorkRefusal.Busy, busy.Refusal);

        // Another incarnation of the same owner is a different holder, too.
        Assert.Equal(WorkRefusal.Busy, WorkKernel.Claim(item, A2, "t3", Timings, T0.AddSeconds(1)).Refusal);
    }

    [Fact]
    public void The_same_incarnation_re_entering_its_live_lease_extends_it_without_a_new_fence()
    {
        var item = Claimed(New(RecoveryDisposition.Rerunnable), A, T0, "first");
        var again = WorkKernel.Claim(item, A, "second", Timings, T0.AddSeconds(10));
        Assert.True(again.Accepted);
        Assert.Null(again.Transition);
        Assert.Equal(1, again.Item!.Fence);
        Assert.Equal("first", again.Item.Lease!.Token);
        Assert.Equal(T0.AddSeconds(40), again.Item.Lease.ExpiresAt);
    }

    [Fact]
    public void A_lapsed_lease_is_taken_at_the_next_fence()
    {
        var item = Claimed(New(RecoveryDisposition.Rerunnable), A, T0);
        var taken = Claimed(item, B, T0 + Timings.Ttl, "b");
        Assert.Equal(2, taken.Fence);
        Assert.Equal(B, taken.Lease!.Owner);
        // The same incarnation coming back after its lease lapsed gets a new fence, too.
        Assert.Equal(2, Claimed(item, A, T0 + Timings.Ttl).Fence);
    }

    [Fact]
    public void Owner_bound_work_is_claimable_until_it_starts_and_never_after()
    {
        var item = Claimed(New(RecoveryDisposition.OwnerBound), A, T0);
        Assert.Equal(2, Claimed(item, B, T0.AddMinutes(5)).Fence); // not started: lapsed lease, anyone may run it

        var started = Started(item, T0.AddSeconds(1));
        Assert.Equal(A, started.Started!.Owner);
        Assert.Equal(WorkRefusal.AlreadyStarted, WorkKernel.Claim(started, B, "b", Timings, T0.AddMinutes(5)).Refusal);
        Assert.Equal(WorkRefusal.AlreadyStarted, WorkKernel.Claim(started, A, "a", Timings, T0.AddMinutes(5)).Refusal);
    }

    [Fact]
    public void Externally_owned_work_is_never_claimed()
    {
        var item = New(RecoveryDisposition.ExternallyOwned);
        Assert.Equal(WorkRefusal.ExternallyOwned, WorkKernel.Claim(item, A, "t", Timings, T0).Refusal);
        Assert.Equal(WorkRefusal.ExternallyOwned, WorkKernel.Grant(item, 0, A, "t", Timings, T0).Refusal);
    }

    [Fact]
    public void The_first_started_marker_wins()
    {
        var item = Started(Claimed(New(RecoveryDisposition.Rerunnable), A, T0), T0.AddSeconds(1));
        var rerun = Claimed(item, B, T0.AddMinutes(1));
        var second = WorkKernel.RecordStarted(rerun, rerun.Lease!.Proof, T0.AddMinutes(1));
        Assert.True(second.Accepted);
        Assert.False(second.Changed);
        Assert.Equal(A, second.Item!.Started!.Owner);
    }

    [Fact]
    public void Started_needs_a_live_lease()
    {
        var item = Claimed(New(RecoveryDisposition.OwnerBound), A, T0);
        Assert.Equal(WorkRefusal.LeaseExpired, WorkKernel.RecordStarted(item, item.Lease!.Proof, T0 + Timings.Ttl).Refusal);
        Assert.Equal(WorkRefusal.NotLeaseHolder, WorkKernel.RecordStarted(item, item.Lease.Proof with { Owner = B }, T0).Refusal);
        Assert.Equal(WorkRefusal.NotLeaseHolder, WorkKernel.RecordStarted(item, item.Lease.Proof with { Token = "guess" }, T0).Refusal);
    }

    [Fact]
    public void Renewal_needs_the_current_fence_and_an_unexpired_lease()
    {
        var item = Claimed(New(RecoveryDisposition.Rerunnable), A, T0);
        var proof = item.Lease!.Proof;
        var renewed = WorkKernel.Renew(item, proof, Timings, T0.AddSeconds(20));
        Assert.Equal(T0.AddSeconds(50), renewed.Item!.Lease!.ExpiresAt);
        Assert.Null(renewed.Transition); // a renewal is not a transition

        Assert.Equal(WorkRefusal.LeaseExpired, WorkKernel.Renew(item, proof, Timings, T0 + Timings.Ttl).Refusal);
        Assert.Equal(WorkRefusal.StaleFence, WorkKernel.Renew(item, proof with { Fence = 0 }, Timings, T0).Refusal);
    }

    [Fact]
    public void A_revenant_cannot_write_or_complete_after_someone_else_claimed()
    {
        var first = Claimed(New(RecoveryDisposition.Rerunnable), A, T0);
        var revenant = first.Lease!.Proof;
        var second = Claimed(first, B, T0.AddMinutes(1), "b");

        Assert.Equal(WorkRefusal.StaleFence, WorkKernel.Write(second, revenant, WorkEventKinds.Usage, "{}", T0.AddMinutes(1)).Refusal);
        Assert.Equal(WorkRefusal.StaleFence, WorkKernel.Complete(second, revenant, WorkTerminalKind.Completed, null, T0.AddMinutes(1)).Refusal);
        Assert.Equal(WorkRefusal.StaleFence, WorkKernel.Renew(second, revenant, Timings, T0.AddMinutes(1)).Refusal);

        var done = WorkKernel.Complete(second, second.Lease!.Proof, WorkTerminalKind.Completed, "ok", T0.AddMinutes(1));
        Assert.True(done.Accepted);
        Assert.Null(done.Item!.Lease);
        Assert.Equal(WorkTerminalKind.Completed, done.Item.Terminal!.Kind);
    }

    [Fact]
    public void Usage_from_a_lapsed_but_unreplaced_holder_still_counts()
    {
        var item = Claimed(New(RecoveryDisposition.Rerunnable), A, T0);
        var late = T0 + Timings.Ttl + TimeSpan.FromSeconds(5);
        Assert.True(WorkKernel.Write(item, item.Lease!.Proof, WorkEventKinds.Usage, "u", late).Accepted);
        var progress = WorkKernel.Write(item, item.Lease.Proof, WorkEventKinds.Progress, "50%", late);
        Assert.Equal("50%", progress.Item!.Progress);
        // Completing needs a live lease, though.
        Assert.Equal(WorkRefusal.LeaseExpired, WorkKernel.Complete(item, item.Lease.Proof, WorkTerminalKind.Completed, null, late).Refusal);
    }

    [Fact]
    public void Terminals_are_never_overwritten()
    {
        var item = Claimed(New(RecoveryDisposition.Rerunnable), A, T0);
        var done = WorkKernel.Complete(item, item.Lease!.Proof, WorkTerminalKind.Failed, "boom", T0).Item!;
        var later = T0.AddHours(1);

        Assert.Equal(WorkRefusal.Terminal, WorkKernel.Claim(done, B, "b", Timings, later).Refusal);
        Assert.Equal(WorkRefusal.Terminal, WorkKernel.Finish(done, WorkTerminalKind.Cancelled, null, later).Refusal);
        Assert.Equal(WorkRefusal.Terminal, WorkKernel.RequestAbandon(done, new AbandonRequest("op", later, null)).Refusal);
        Assert.Equal(WorkRefusal.Terminal, WorkKernel.Revoke(done, done.Fence, "x").Refusal);
        Assert.False(WorkKernel.Sweep(done, [new DeathEvidence(A, "gone")], later).Changed);
        Assert.False(WorkKernel.DrainOwner(done, A, later).Changed);
        Assert.Throws<ArgumentException>(() => WorkKernel.Finish(item, WorkTerminalKind.Abandoned, null, later));
    }

    [Fact]
    public void Elapsed_time_alone_never_terminalises_work()
    {
        foreach (var disposition in Enum.GetValues<RecoveryDisposition>())
        {
            var item = New(disposition);
            if (disposition != RecoveryDisposition.ExternallyOwned)
            {
                item = Started(Claimed(item, A, T0), T0);
            }

            var decision = WorkKernel.Sweep(item, [], T0.AddDays(365));
            Assert.Null(decision.Item!.Terminal);
        }
    }

    [Fact]
    public void An_explicit_deadline_terminalises_work_as_failed()
    {
        var item = Claimed(New(RecoveryDisposition.Rerunnable, deadline: T0.AddMinutes(1)), A, T0);
        Assert.Null(WorkKernel.Sweep(item, [], T0.AddSeconds(59)).Item!.Terminal);
        var swept = WorkKernel.Sweep(item, [], T0.AddMinutes(1));
        Assert.Equal(WorkTerminalKind.Failed, swept.Item!.Terminal!.Kind);
        Assert.Equal(WorkKernel.DeadlinePassedReason, swept.Item.Terminal.Reason);
        Assert.Null(swept.Item.Lease);
        Assert.Equal(WorkRefusal.DeadlinePassed, WorkKernel.Claim(New(RecoveryDisposition.Rerunnable, T0), A, "t", Timings, T0).Refusal);
    }

    [Fact]
    public void The_sweep_releases_a_lapsed_rerunnable_lease_at_the_next_fence()
    {
        var item = Claimed(New(RecoveryDisposition.Rerunnable), A, T0);
        Assert.False(WorkKernel.Sweep(item, [], T0.AddSeconds(29)).Changed);
        var released = WorkKernel.Sweep(item, [], T0 + Timings.Ttl);
        Assert.Equal(WorkEventKinds.Released, released.Transition!.Kind);
        Assert.Null(released.Item!.Lease);
        Assert.Equal(2, released.Item.Fence);
        Assert.Equal(3, Claimed(released.Item, B, T0 + Timings.Ttl).Fence);
    }

    [Fact]
    public void Started_owner_bound_work_with_a_lapsed_lease_stays_open_without_evidence()
    {
        var item = Started(Claimed(New(RecoveryDisposition.OwnerBound), A, T0), T0);
        var later = T0.AddHours(1);
        Assert.False(WorkKernel.Sweep(item, [], later).Changed);
        Assert.False(WorkKernel.Sweep(item, [new DeathEvidence(A2, "another incarnation died")], later).Changed);

        var observed = WorkKernel.Observe(item, later);
        Assert.True(observed.LeaseLapsed);
        Assert.Equal(A, observed.Holder);
    }

    [Fact]
    public void Death_evidence_abandons_started_owner_bound_work_through_the_sweep()
    {
        var item = Started(Claimed(New(RecoveryDisposition.OwnerBound), A, T0), T0);
        var swept = WorkKernel.Sweep(item, [new DeathEvidence(A, "agent restarted as boot-2")], T0.AddSeconds(1));
        var terminal = swept.Item!.Terminal!;
        Assert.Equal(WorkTerminalKind.Abandoned, terminal.Kind);
        Assert.Equal(AbandonWriter.Sweep, terminal.Abandon!.Writer);
        Assert.Equal(A, terminal.Abandon.Owner);
        Assert.Equal("agent restarted as boot-2", terminal.Abandon.Evidence);
    }

    [Fact]
    public void Death_evidence_frees_a_dead_holders_rerunnable_lease_early()
    {
        var item = Claimed(New(RecoveryDisposition.Rerunnable), A, T0);
        var swept = WorkKernel.Sweep(item, [new DeathEvidence(A, "process gone")], T0.AddSeconds(1));
        Assert.Equal(WorkEventKinds.Released, swept.Transition!.Kind);
        Assert.Equal(2, swept.Item!.Fence);
    }

    [Fact]
    public void An_abandon_request_is_reconciled_only_after_the_lease_lapsed()
    {
        var item = Started(Claimed(New(RecoveryDisposition.OwnerBound), A, T0), T0);
        var requested = WorkKernel.RequestAbandon(item, new AbandonRequest("consumer", T0.AddSeconds(1), "no longer needed")).Item!;
        Assert.Equal("consumer", WorkKernel.Observe(requested, T0).PendingAbandon!.RequestedBy);
        // A second request keeps the first.
        Assert.Equal("consumer", WorkKernel.RequestAbandon(requested, new AbandonRequest("operator", T0.AddSeconds(2), null)).Item!.AbandonRequest!.RequestedBy);
        // Nobody new may take rerunnable work while a request waits.
        var rerunnable = WorkKernel.RequestAbandon(New(RecoveryDisposition.Rerunnable), new AbandonRequest("consumer", T0, null)).Item!;
        Assert.Equal(WorkRefusal.AbandonRequested, WorkKernel.Claim(rerunnable, B, "b", Timings, T0).Refusal);

        Assert.False(WorkKernel.Sweep(requested, [], T0.AddSeconds(29)).Changed); // holder still live
        var swept = WorkKernel.Sweep(requested, [], T0 + Timings.Ttl).Item!;
        Assert.Equal(AbandonWriter.ReconciledRequest, swept.Terminal!.Abandon!.Writer);
        Assert.Equal(A, swept.Terminal.Abandon.Owner);
        Assert.Contains("no longer needed", swept.Terminal.Abandon.Evidence, StringComparison.Ordinal);
    }

    [Fact]
    public void An_externally_owned_abandon_request_is_reconciled_at_once_naming_no_owner()
    {
        var item = New(RecoveryDisposition.ExternallyOwned);
        Assert.False(WorkKernel.Sweep(item, [], T0.AddDays(1)).Changed);
        var requested = WorkKernel.RequestAbandon(item, new AbandonRequest("operator", T0, "host retired")).Item!;
        var swept = WorkKernel.Sweep(requested, [], T0).Item!;
        Assert.Equal(AbandonWriter.ReconciledRequest, swept.Terminal!.Abandon!.Writer);
        Assert.Null(swept.Terminal.Abandon.Owner);
    }

    [Fact]
    public void Owner_drain_abandons_its_started_owner_bound_work_and_releases_the_rest()
    {
        var now = T0.AddSeconds(5);
        var mineStarted = Started(Claimed(New(RecoveryDisposition.OwnerBound), A, T0), T0);
        var drained = WorkKernel.DrainOwner(mineStarted, A2, now); // a later incarnation drains the owner's work too
        Assert.Equal(AbandonWriter.OwnerDrain, drained.Item!.Terminal!.Abandon!.Writer);
        Assert.Equal(A, drained.Item.Terminal.Abandon.Owner);
        Assert.Equal(WorkWriters.OwnerDrain, drained.Transition!.Writer);

        var mineRerunnable = Started(Claimed(New(RecoveryDisposition.Rerunnable), A, T0), T0);
        var released = WorkKernel.DrainOwner(mineRerunnable, A, now);
        Assert.Null(released.Item!.Terminal);
        Assert.Null(released.Item.Lease);
        Assert.Equal(2, released.Item.Fence); // anything the drained agent still sends is stale

        var mineUnstarted = Claimed(New(RecoveryDisposition.OwnerBound), A, T0);
        Assert.Equal(WorkEventKinds.Released, WorkKernel.DrainOwner(mineUnstarted, A, now).Transition!.Kind);

        var theirs = Started(Claimed(New(RecoveryDisposition.OwnerBound), B, T0), T0);
        Assert.False(WorkKernel.DrainOwner(theirs, A, now).Changed);
    }

    [Fact]
    public void Owner_drain_defers_its_started_work_while_a_foreign_lease_is_live()
    {
        // Started by A, then (not started yet when B claimed) ... model a foreign live lease directly.
        var item = Started(Claimed(New(RecoveryDisposition.OwnerBound), A, T0), T0) with
        {
            Lease = new WorkLease(B, "b", 1, T0, T0.AddMinutes(1)),
        };
        Assert.Equal(WorkRefusal.Busy, WorkKernel.DrainOwner(item, A, T0.AddSeconds(1)).Refusal);
        Assert.Equal(WorkTerminalKind.Abandoned, WorkKernel.DrainOwner(item, A, T0.AddMinutes(1)).Item!.Terminal!.Kind);
    }

    [Fact]
    public void Revoke_then_grant_hands_the_next_fence_to_a_named_successor()
    {
        var item = Claimed(New(RecoveryDisposition.Rerunnable), A, T0);
        Assert.Equal(WorkRefusal.NotRevoked, WorkKernel.Grant(item, 1, B, "b", Timings, T0).Refusal);

        var revoked = WorkKernel.Revoke(item, 1, "primary evicted");
        Assert.Equal(2, revoked.Item!.Fence);
        Assert.Null(revoked.Item.Lease);
        Assert.False(WorkKernel.Revoke(revoked.Item, 1, "again").Changed); // idempotent
        Assert.Equal(WorkRefusal.StaleFence, WorkKernel.Revoke(revoked.Item, 5, "future").Refusal);
        Assert.Equal(WorkRefusal.StaleFence, WorkKernel.Renew(revoked.Item, item.Lease!.Proof, Timings, T0).Refusal);

        Assert.Equal(WorkRefusal.StaleFence, WorkKernel.Grant(revoked.Item, 1, B, "b", Timings, T0).Refusal);
        var granted = WorkKernel.Grant(revoked.Item, 2, B, "b", Timings, T0);
        Assert.Equal(2, granted.Item!.Fence);
        Assert.Equal(B, granted.Item.Lease!.Owner);
        Assert.Equal(WorkRefusal.NotRevoked, WorkKernel.Grant(granted.Item, 2, A, "a", Timings, T0).Refusal); // granted once only
    }

    [Fact]
    public void A_fresh_item_cannot_be_granted_its_initial_fence()
    {
        Assert.Equal(WorkRefusal.NotRevoked, WorkKernel.Grant(New(RecoveryDisposition.Rerunnable), 0, A, "a", Timings, T0).Refusal);
    }

    [Theory]
    [InlineData(30_000, 10_000, true)]
    [InlineData(29_999, 10_000, false)]
    [InlineData(3, 1, true)]
    [InlineData(0, 0, false)]
    public void Lease_ttl_must_cover_three_renew_intervals(int ttlMs, int renewMs, bool valid)
    {
        var timings = new LeaseTimings(TimeSpan.FromMilliseconds(ttlMs), TimeSpan.FromMilliseconds(renewMs));
        Assert.Equal(valid, timings.Validate().Count == 0);
        if (!valid)
        {
            Assert.Throws<ArgumentException>(() => WorkKernel.Claim(New(RecoveryDisposition.Rerunnable), A, "t", timings, T0));
        }
    }
}
