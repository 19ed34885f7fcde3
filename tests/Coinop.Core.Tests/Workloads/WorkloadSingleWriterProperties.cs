using Coinop.Core.Workloads;
using CsCheck;

namespace Coinop.Core.Tests.Workloads;

/// <summary>
/// Random sequences of waits, crashes, restarts, partitions (either direction), heals, exits, cancels and top-ups
/// against a simulated world: at most one copy ever runs, nothing starts before the previous epoch was revoked, a
/// revoked epoch never runs again and is told to stop, terminals and history are never rewritten, attempts stay within
/// the restart policy, and money is refunded at most once.
/// </summary>
public class WorkloadSingleWriterProperties
{
    private const int AgentCount = 4;

    private abstract record Op;

    private sealed record Wait(int Ticks) : Op;

    private sealed record Crash(int Agent) : Op;

    private sealed record Restart(int Agent) : Op;

    private sealed record Cut(int Agent, bool ToMarket, bool FromMarket) : Op;

    private sealed record Heal(int Agent) : Op;

    private sealed record Exit(int Code) : Op;

    private sealed record Cancel : Op;

    private sealed record TopUp(int Seconds) : Op;

    private static readonly Gen<int> AnyAgent = Gen.Int[0, AgentCount - 1];

    private static readonly Gen<Op> Ops = Gen.Frequency(
        (10, Gen.Int[1, 100].Select(t => (Op)new Wait(t))),
        (2, AnyAgent.Select(a => (Op)new Crash(a))),
        (2, AnyAgent.Select(a => (Op)new Restart(a))),
        (3, Gen.Select(AnyAgent, Gen.Int[0, 2], (a, d) => (Op)new Cut(a, d != 1, d != 2))),
        (3, AnyAgent.Select(a => (Op)new Heal(a))),
        (1, Gen.OneOf(0, 1, 137).Select(c => (Op)new Exit(c))),
        (1, Gen.Const((Op)new Cancel())),
        (1, Gen.Int[1, 120].Select(s => (Op)new TopUp(s))));

    private static readonly Gen<WorkloadSpec> Specs = Gen.Select(
        Gen.Int[0, 3], Gen.Int[0, 3], Gen.Int[20, 400],
        (restart, replication, duration) => WorkloadSpecTests.Spec(
            restart == 0 ? RestartPolicy.Never : RestartPolicy.OnFailure(restart),
            standbys: replication >= 2 ? replication - 1 : 0,
            checkpointed: replication % 2 == 1,
            durationSeconds: duration));

    [Fact]
    public void At_most_one_copy_runs_through_crashes_partitions_and_reconnects()
    {
        var runs = 0;
        var failedOver = 0;
        Gen.Select(Specs, Gen.Int, Ops.Array[1, 60]).Sample((spec, seed, ops) =>
        {
            var world = new WorkloadWorld(spec, AgentCount, seed);
            Run(world, ops);
            Interlocked.Increment(ref runs);
            if (world.LastStartedEpoch > 1)
            {
                Interlocked.Increment(ref failedOver);
            }
        }, iter: 400);

        // The property means little unless many worlds actually fail over.
        Assert.True(failedOver * 5 >= runs, $"only {failedOver} of {runs} runs failed over");
    }

    [Fact]
    public void The_property_fails_when_a_cut_off_provider_keeps_its_copy()
    {
        // Same world, but agents ignore the stop-after rule: cutting the primary off gets the standby promoted while
        // the primary's copy still runs, and the check must notice.
        var spec = WorkloadSpecTests.Spec(standbys: 1);
        var world = new WorkloadWorld(spec, AgentCount, seed: 1, agentsHonourStopAfter: false);
        world.Wait(8);
        world.Cut(0, toMarket: true, fromMarket: true);
        var failure = Assert.ThrowsAny<Exception>(() => world.Wait(200));
        Assert.Contains("2 copies running", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_healed_partition_does_not_resurrect_the_old_copy()
    {
        var spec = WorkloadSpecTests.Spec(standbys: 1);
        var world = new WorkloadWorld(spec, AgentCount, seed: 7);
        world.Wait(8);
        Assert.Equal(WorkloadState.Live, world.Workload.State);

        world.Cut(0, toMarket: true, fromMarket: true);
        world.Wait(100);
        Assert.Equal(WorkloadState.Live, world.Workload.State);
        Assert.Equal("P1", world.Workload.Provider);
        Assert.Equal(2, world.Workload.Epoch);
        Assert.Null(world.Agents[0].Copy);

        world.Heal(0);
        world.Wait(100);
        Assert.Null(world.Agents[0].Copy);
        Assert.Equal(2, world.Agents[1].Copy);
        Assert.Equal(1, world.MaxConcurrentCopies);
    }

    private static void Run(WorkloadWorld world, Op[] ops)
    {
        foreach (var op in ops)
        {
            switch (op)
            {
                case Wait w: world.Wait(w.Ticks); break;
                case Crash c: world.Crash(c.Agent); break;
                case Restart r: world.Restart(r.Agent); break;
                case Cut c: world.Cut(c.Agent, c.ToMarket, c.FromMarket); break;
                case Heal h: world.Heal(h.Agent); break;
                case Exit e: world.Exit(e.Code); break;
                case Cancel: world.Cancel(); break;
                case TopUp t: world.TopUp(t.Seconds); break;
            }
        }

        world.Wait(200); // let every pending deadline play out
    }
}
