using Coinop.Core.Work;
using CsCheck;
using Coinop.Core.Workloads;
using Microsoft.Extensions.Time.Testing;
using static Coinop.Core.Workloads.WorkloadEffect;
using static Coinop.Core.Workloads.WorkloadInput;

namespace Coinop.Core.Tests.Workloads;

public class WorkloadMachineTests
{
    private static readonly WorkloadTimings Timings = new(
        HeartbeatInterval: TimeSpan.FromSeconds(5), ProviderStopAfter: TimeSpan.FromSeconds(90), ClockSlack: TimeSpan.FromSeconds(10),
        SuspectAfter: TimeSpan.FromSeconds(120), EvictAfter: TimeSpan.FromSeconds(300));

    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 25, 12, 0, 0, TimeSpan.Zero));

    private Workload _w = null!;

    private IReadOnlyList<WorkloadEffect> Submit(WorkloadSpec spec, params string[] standbys)
    {
        var d = WorkloadMachine.Submit("wl-1", spec, "A", standbys, _time.GetUtcNow());
        _w = d.Next;
        return d.Effects;
    }

    private WorkloadDecision Apply(WorkloadInput input)
    {
        var d = WorkloadMachine.Apply(_w, input, Timings, _time.GetUtcNow());
        _w = d.Next;
        return d;
    }

    private IReadOnlyList<WorkloadEffect> After(int seconds, WorkloadInput? input = null)
    {
        _time.Advance(TimeSpan.FromSeconds(seconds));
        return Apply(input ?? new Tick()).Effects;
    }

    private (WorkloadState, string?)[] History => [.. _w.History.Select(h => (h.State, h.Provider))];

    [Fact]
    public void The_first_copy_starts_at_epoch_one_and_goes_live_on_its_first_heartbeat()
    {
        var effects = Submit(WorkloadSpecTests.Spec());
        Assert.Equal([new StartCopy("A", 1, null)], effects);
        Assert.Equal(WorkloadState.Provisioning, _w.State);
        Assert.True(_w.AllowedToRun("A", 1));

        Assert.Equal([new RenewLease("A", 1)], After(3, new CopyHeartbeat("A", 1)));
        Assert.Equal(WorkloadState.Live, _w.State);
        Assert.Equal(_time.GetUtcNow(), _w.Since);
        Assert.Equal([(WorkloadState.Provisioning, "A"), (WorkloadState.Live, "A")], History);
    }

    [Fact]
    public void A_copy_that_exits_before_its_first_heartbeat_still_shows_it_was_live()
    {
        Submit(WorkloadSpecTests.Spec());
        After(1, new CopyExited("A", 1, 0));
        Assert.Equal(WorkloadState.Completed, _w.State);
        Assert.Equal([(WorkloadState.Provisioning, "A"), (WorkloadState.Live, "A"), (WorkloadState.Completed, "A")], History);
    }

    [Fact]
    public void A_silent_copy_becomes_suspect_and_recovers_when_heartbeats_return()
    {
        Submit(WorkloadSpecTests.Spec());
        After(1, new CopyHeartbeat("A", 1));
        Assert.Empty(After(119));
        Assert.Equal(WorkloadState.Live, _w.State);
        Assert.Empty(After(1));
        Assert.Equal(WorkloadState.Suspect, _w.State); // non-replicated workloads become suspect too
        Assert.True(_w.AllowedToRun("A", 1));          // suspicion alone revokes nothing

        Assert.Equal([new RenewLease("A", 1)], After(100, new CopyHeartbeat("A", 1)));
        Assert.Equal(WorkloadState.Live, _w.State);
        Assert.Equal([WorkloadState.Provisioning, WorkloadState.Live, WorkloadState.Suspect, WorkloadState.Live], _w.History.Select(h => h.State));
    }

    [Fact]
    public void An_evicted_primary_is_revoked_before_its_standby_is_promoted()
    {
        var effects = Submit(WorkloadSpecTests.Spec(standbys: 2), "B", "C");
        Assert.Equal([new ReserveStandby("B"), new ReserveStandby("C"), new StartCopy("A", 1, null)], effects);
        After(1, new CopyHeartbeat("A", 1));
        After(200, new StandbyHeartbeat("C"));
        After(50, new StandbyHeartbeat("B"));  // B was heard last

        effects = After(50); // 300 s after A's last heartbeat
        Assert.Equal([new StopCopy("A", 1, WorkloadReasons.Evicted), new RevokeLease(1)], effects);
        Assert.Equal(WorkloadState.Evicted, _w.State);
        Assert.False(_w.AllowedToRun("A", 1));
        Assert.Null(_w.Provider);

        // The old primary showing up now is told to stop, and changes nothing.
        Assert.Equal([new StopCopy("A", 1, "not_current")], Apply(new CopyHeartbeat("A", 1)).Effects);
        Assert.Equal(WorkloadState.Evicted, _w.State);

        Assert.Equal([new PromoteStandby("B", 2, null)], Apply(new LeaseRevoked(1)).Effects);
        Assert.Equal(WorkloadState.Respawning, _w.State);
        Assert.Equal(2, _w.Epoch);
        Assert.Equal(0, _w.Attempts); // promotion after a lost provider is not a restart
        Assert.Equal(["C"], _w.Standbys.Select(s => s.Provider));

        Assert.Equal([new RenewLease("B", 2)], After(2, new CopyHeartbeat("B", 2)));
        Assert.Equal(WorkloadState.Live, _w.State);
        Assert.Equal("B", _w.Provider);
        Assert.Equal(
            [(WorkloadState.Provisioning, "A"), (WorkloadState.Live, "A"), (WorkloadState.Suspect, "A"), (WorkloadState.Evicted, "A"),
             (WorkloadState.Respawning, "B"), (WorkloadState.Live, "B")],
            History);
        Assert.Equal([new StopCopy("A", 1, "not_current")], Apply(new CopyHeartbeat("A", 1)).Effects);
    }

    [Fact]
    public void A_revoke_for_another_epoch_starts_nothing()
    {
        Submit(WorkloadSpecTests.Spec(standbys: 1), "B");
        After(200, new StandbyHeartbeat("B"));
        After(100);
        Assert.Equal(WorkloadState.Evicted, _w.State);
        var d = Apply(new LeaseRevoked(2));
        Assert.NotNull(d.Rejection);
        Assert.Empty(d.Effects);
    }

    [Fact]
    public void A_dead_standby_is_not_promoted()
    {
        Submit(WorkloadSpecTests.Spec(RestartPolicy.OnFailure(1), standbys: 1), "B");
        After(1, new CopyHeartbeat("A", 1));
        After(300);
        Assert.Equal(WorkloadState.Evicted, _w.State);
        var effects = Apply(new LeaseRevoked(1)).Effects; // B not heard for 301 s
        Assert.Equal([new PlaceCopy(2, 1, "A")], effects);
        Assert.Equal(1, _w.Attempts);
    }

    [Fact]
    public void A_lost_non_replicated_copy_is_respawned_elsewhere_when_the_policy_allows()
    {
        Submit(WorkloadSpecTests.Spec(RestartPolicy.OnFailure(2)));
        After(1, new CopyHeartbeat("A", 1));
        Assert.Equal([new StopCopy("A", 1, WorkloadReasons.Evicted), new RevokeLease(1)], After(300));
        Assert.Equal([new PlaceCopy(2, 1, "A")], Apply(new LeaseRevoked(1)).Effects);
        Assert.Equal(WorkloadState.Respawning, _w.State);
        Assert.Null(_w.Provider);
        Assert.NotNull(Apply(new CopyPlaced("C", 3)).Rejection); // a placement for another epoch

        Assert.Equal([new StartCopy("C", 2, null)], Apply(new CopyPlaced("C", 2)).Effects);
        Assert.Equal([(WorkloadState.Respawning, null), (WorkloadState.Respawning, "C")], History[^2..]);
        After(5, new CopyHeartbeat("C", 2));
        Assert.Equal(WorkloadState.Live, _w.State);
        Assert.Equal(1, _w.Attempts);
    }

    [Fact]
    public void A_copy_that_never_comes_up_is_evicted_too()
    {
        Submit(WorkloadSpecTests.Spec(RestartPolicy.OnFailure(1)));
        Assert.Empty(After(299));
        Assert.Equal(WorkloadState.Provisioning, _w.State);
        Assert.Equal([new StopCopy("A", 1, WorkloadReasons.Evicted), new RevokeLease(1)], After(1));
    }

    [Fact]
    public void Without_a_standby_or_restarts_a_lost_copy_fails_the_workload()
    {
        Submit(WorkloadSpecTests.Spec(durationSeconds: 1000));
        After(1, new CopyHeartbeat("A", 1));
        var effects = After(300);
        Assert.Equal(
            [new StopCopy("A", 1, WorkloadReasons.Evicted), new FinishWork(WorkTerminalKind.Failed, $"{WorkloadReasons.Evicted}: silent for 300s")],
            effects);
        Assert.Equal(WorkloadState.Failed, _w.State);
        Assert.DoesNotContain(effects, e => e is RevokeLease or StartCopy or PromoteStandby or PlaceCopy);
    }

    [Fact]
    public void Exit_zero_completes_and_releases_the_standbys()
    {
        Submit(WorkloadSpecTests.Spec(standbys: 1, durationSeconds: 100), "B");
        After(1, new CopyHeartbeat("A", 1));
        var effects = After(9, new CopyExited("A", 1, 0));
        Assert.Equal(
            [new FinishWork(WorkTerminalKind.Completed, WorkloadReasons.Exited), new ReleaseStandby("B")],
            effects);
        Assert.Equal(WorkloadState.Completed, _w.State);
        Assert.Empty(_w.Standbys);
    }

    [Fact]
    public void A_crash_is_restarted_up_to_the_policy_then_fails()
    {
        Submit(WorkloadSpecTests.Spec(RestartPolicy.OnFailure(1)));
        After(1, new CopyHeartbeat("A", 1));
        Assert.Equal([new RevokeLease(1)], After(1, new CopyExited("A", 1, 3)));
        Assert.Equal(WorkloadState.Respawning, _w.State);
        Assert.Equal([new PlaceCopy(2, 1, "A")], Apply(new LeaseRevoked(1)).Effects);
        Apply(new CopyPlaced("B", 2));
        After(1, new CopyHeartbeat("B", 2));

        var effects = After(1, new CopyExited("B", 2, 1));
        Assert.Equal(WorkloadState.Failed, _w.State);
        Assert.StartsWith(WorkloadReasons.Crashed, _w.Reason, StringComparison.Ordinal);
        Assert.IsType<FinishWork>(effects[0]);
        Assert.Equal(1, _w.Attempts);
    }

    [Fact]
    public void A_crash_with_restart_never_fails_even_with_standbys()
    {
        Submit(WorkloadSpecTests.Spec(standbys: 1), "B");
        var effects = After(1, new CopyExited("A", 1, 137));
        Assert.Equal(WorkloadState.Failed, _w.State);
        Assert.DoesNotContain(effects, e => e is PromoteStandby);
        Assert.Contains(new ReleaseStandby("B"), effects);
    }

    [Fact]
    public void A_crash_may_restart_on_a_standby_and_counts_as_an_attempt()
    {
        Submit(WorkloadSpecTests.Spec(RestartPolicy.OnFailure(2), standbys: 1), "B");
        After(1, new CopyExited("A", 1, 1));
        Assert.Equal([new PromoteStandby("B", 2, null)], Apply(new LeaseRevoked(1)).Effects);
        Assert.Equal(1, _w.Attempts);
    }

    [Fact]
    public void A_copy_reported_lost_is_replaced_without_waiting_for_eviction()
    {
        Submit(WorkloadSpecTests.Spec(standbys: 1), "B");
        After(1, new CopyHeartbeat("A", 1));
        Assert.Equal([new StopCopy("A", 1, WorkloadReasons.Lost), new RevokeLease(1)], After(1, new CopyLost("A", 1, "lost contact")));
        Assert.Equal(WorkloadState.Evicted, _w.State);
        Assert.NotNull(Apply(new CopyLost("A", 1, "again")).Rejection);
    }

    [Fact]
    public void Cancel_stops_the_copy_once()
    {
        Submit(WorkloadSpecTests.Spec(standbys: 1, durationSeconds: 600), "B");
        After(1, new CopyHeartbeat("A", 1));
        var effects = After(99, new Cancel("consumer"));
        Assert.Equal(
            [new StopCopy("A", 1, "cancelled by consumer"), new FinishWork(WorkTerminalKind.Cancelled, "cancelled by consumer"),
             new ReleaseStandby("B")],
            effects);
        Assert.Equal(WorkloadState.Cancelled, _w.State);

        var again = Apply(new Cancel("consumer"));
        Assert.Equal("workload is cancelled", again.Rejection);
        Assert.Empty(again.Effects);
        Assert.NotNull(Apply(new TopUp(TimeSpan.FromMinutes(1))).Rejection);
        Assert.Equal([new StopCopy("A", 1, "cancelled")], Apply(new CopyHeartbeat("A", 1)).Effects);
        Assert.Equal(WorkloadState.Cancelled, _w.State);
    }

    [Fact]
    public void Running_out_of_paid_time_completes_the_workload_and_top_ups_extend_it()
    {
        Submit(WorkloadSpecTests.Spec(durationSeconds: 60));
        After(1, new CopyHeartbeat("A", 1));
        Assert.NotNull(Apply(new TopUp(TimeSpan.Zero)).Rejection);
        Apply(new TopUp(TimeSpan.FromSeconds(30)));
        Assert.Empty(After(50, new CopyHeartbeat("A", 1)).OfType<StopCopy>());
        Assert.Empty(After(38, new CopyHeartbeat("A", 1)).OfType<StopCopy>());

        var effects = After(1);
        Assert.Equal([new StopCopy("A", 1, WorkloadReasons.LeaseExpired), new FinishWork(WorkTerminalKind.Completed, WorkloadReasons.LeaseExpired)], effects);
        Assert.Equal(WorkloadState.Completed, _w.State);
        Assert.Equal(WorkloadReasons.LeaseExpired, _w.Reason);
    }

    /// <summary>
    /// Top-ups of up to ten years each (free on a free market), with time passing between them: the machine never throws
    /// (about 800 of them used to push the lease past DateTimeOffset's last date), the paid time never reaches more than
    /// <see cref="WorkloadMachine.MaxPaidAhead"/> beyond now, and a refused top-up changes nothing.
    /// </summary>
    [Fact]
    public void Top_ups_never_push_the_paid_time_past_the_limit_or_throw()
    {
        var step = Gen.Select(Gen.Long[1, (long)WorkloadMachine.MaxPaidAhead.TotalSeconds * 2], Gen.Int[0, 1_000_000]);
        step.Array[1, 1_500].Sample(steps =>
        {
            var now = new DateTimeOffset(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);
            var w = WorkloadMachine.Submit("wl-1", WorkloadSpecTests.Spec(durationSeconds: 60), "A", [], now).Next;
            foreach (var (extraSeconds, pause) in steps)
            {
                var d = WorkloadMachine.Apply(w, new TopUp(TimeSpan.FromSeconds(extraSeconds)), Timings, now);
                if (d.Next.IsTerminal)
                {
                    return;
                }

                Assert.True(d.Next.PaidUntil - now <= WorkloadMachine.MaxPaidAhead);
                Assert.Equal(d.Rejection is null ? w.PaidUntil + TimeSpan.FromSeconds(extraSeconds) : w.PaidUntil, d.Next.PaidUntil);
                w = d.Next;
                now += TimeSpan.FromSeconds(pause);
            }
        }, iter: 50);
    }

    [Fact]
    public void The_time_that_passed_is_applied_even_when_the_input_is_rejected()
    {
        Submit(WorkloadSpecTests.Spec(durationSeconds: 60));
        var d = WorkloadMachine.Apply(_w, new Cancel("consumer"), Timings, _time.GetUtcNow().AddSeconds(61));
        Assert.Equal("workload is completed", d.Rejection);
        Assert.Contains(new FinishWork(WorkTerminalKind.Completed, WorkloadReasons.LeaseExpired), d.Effects);
    }

    [Fact]
    public void A_respawn_restores_the_latest_checkpoint_of_the_current_copy()
    {
        Submit(WorkloadSpecTests.Spec(RestartPolicy.OnFailure(1), checkpointed: true));
        After(1, new CopyHeartbeat("A", 1));
        Assert.Null(Apply(new CheckpointStored("A", 1, "ckpt-1")).Rejection);
        Assert.NotNull(Apply(new CheckpointStored("Z", 1, "forged")).Rejection);
        After(300);
        Assert.NotNull(Apply(new CheckpointStored("A", 1, "from-a-revoked-copy")).Rejection);
        Apply(new LeaseRevoked(1));
        Assert.Equal([new StartCopy("B", 2, "ckpt-1")], Apply(new CopyPlaced("B", 2)).Effects);
    }

    [Fact]
    public void No_provider_for_a_respawn_fails_the_workload()
    {
        Submit(WorkloadSpecTests.Spec(RestartPolicy.OnFailure(1)));
        After(1, new CopyExited("A", 1, 2));
        Apply(new LeaseRevoked(1));
        var effects = Apply(new PlacementFailed(2, "no capacity")).Effects;
        Assert.Equal(WorkloadState.Failed, _w.State);
        Assert.Equal($"{WorkloadReasons.NoProvider}: no capacity", _w.Reason);
        Assert.IsType<FinishWork>(effects[0]);
    }

    [Fact]
    public void Standbys_can_be_added_to_replace_a_promoted_one()
    {
        Submit(WorkloadSpecTests.Spec(standbys: 1), "B");
        Assert.Equal([new ReserveStandby("C")], Apply(new StandbyAdded("C")).Effects);
        Assert.NotNull(Apply(new StandbyAdded("C")).Rejection);
        Assert.NotNull(Apply(new StandbyAdded("A")).Rejection);
        Assert.NotNull(Apply(new StandbyHeartbeat("Z")).Rejection);
    }

    [Fact]
    public void Submit_refuses_an_invalid_spec_or_standby_list()
    {
        var now = _time.GetUtcNow();
        Assert.Throws<ArgumentException>(() => WorkloadMachine.Submit("w", WorkloadSpecTests.Spec() with { MemoryMb = 0 }, "A", [], now));
        var warm = WorkloadSpecTests.Spec(standbys: 2);
        Assert.Throws<ArgumentException>(() => WorkloadMachine.Submit("w", warm, "A", ["B"], now));
        Assert.Throws<ArgumentException>(() => WorkloadMachine.Submit("w", warm, "A", ["B", "B"], now));
        Assert.Throws<ArgumentException>(() => WorkloadMachine.Submit("w", warm, "A", ["A", "B"], now));
    }

    [Fact]
    public void Invalid_timings_are_refused()
    {
        Submit(WorkloadSpecTests.Spec());
        var bad = Timings with { ProviderStopAfter = Timings.EvictAfter };
        Assert.Throws<ArgumentException>(() => WorkloadMachine.Apply(_w, new Tick(), bad, _time.GetUtcNow()));
    }
}
