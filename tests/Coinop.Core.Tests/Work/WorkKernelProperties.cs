using Coinop.Core.Work;
using CsCheck;
using Microsoft.Extensions.Time.Testing;

namespace Coinop.Core.Tests.Work;

/// <summary>
/// Random histories of claims, grants, renewals, writes, completions, revokes, abandon requests, sweeps and drains by
/// several owners (and stale copies of their proofs), checking the kernel's guarantees after every step.
/// </summary>
public class WorkKernelProperties
{
    private static readonly LeaseTimings Timings = new(TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(10));

    private static readonly LeaseOwner[] Owners =
    [
        new("a", "1"), new("a", "2"), new("b", "1"), new("c", "1"),
    ];

    private abstract record Op;

    private sealed record Advance(int Seconds) : Op;

    private sealed record Claim(int Owner) : Op;

    private sealed record Grant(int Owner, int FenceOffset) : Op;

    private sealed record Renew(int Proof) : Op;

    private sealed record Start(int Proof) : Op;

    private sealed record WriteUsage(int Proof) : Op;

    private sealed record Complete(int Proof, WorkTerminalKind Kind) : Op;

    private sealed record Finish(WorkTerminalKind Kind) : Op;

    private sealed record RequestAbandon : Op;

    private sealed record Revoke(int FenceOffset) : Op;

    private sealed record Sweep(int DeadOwnerMask) : Op;

    private sealed record Drain(int Owner) : Op;

    private static readonly Gen<WorkTerminalKind> RunTerminal =
        Gen.OneOf(WorkTerminalKind.Completed, WorkTerminalKind.Failed, WorkTerminalKind.Cancelled);

    private static readonly Gen<Op> Ops = Gen.Frequency(
        (6, Gen.Int[0, 45].Select(s => (Op)new Advance(s))),
        (5, Gen.Int[0, Owners.Length - 1].Select(o => (Op)new Claim(o))),
        (2, Gen.Select(Gen.Int[0, Owners.Length - 1], Gen.Int[-1, 1], (o, f) => (Op)new Grant(o, f))),
        (4, Gen.Int[0, 20].Select(p => (Op)new Renew(p))),
        (3, Gen.Int[0, 20].Select(p => (Op)new Start(p))),
        (3, Gen.Int[0, 20].Select(p => (Op)new WriteUsage(p))),
        (2, Gen.Select(Gen.Int[0, 20], RunTerminal, (p, k) => (Op)new Complete(p, k))),
        (1, RunTerminal.Select(k => (Op)new Finish(k))),
        (1, Gen.Const((Op)new RequestAbandon())),
        (2, Gen.Int[-1, 1].Select(f => (Op)new Revoke(f))),
        (3, Gen.Int[0, 15].Select(m => (Op)new Sweep(m))),
        (1, Gen.Int[0, Owners.Length - 1].Select(o => (Op)new Drain(o))));

    [Fact]
    public void The_kernel_keeps_its_guarantees_through_any_history()
    {
        Gen.Select(Gen.Enum<RecoveryDisposition>(), Gen.Int[0, 600], Ops.Array[1, 80])
            .Sample((disposition, deadlineSeconds, ops) => Run(disposition, deadlineSeconds, ops), iter: 3000);
    }

    /// <summary>A deadline of 0 means none.</summary>
    private static void Run(RecoveryDisposition disposition, int deadlineSeconds, Op[] ops)
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 11, 25, 12, 0, 0, TimeSpan.Zero));
        var deadline = deadlineSeconds == 0 ? (DateTimeOffset?)null : time.GetUtcNow().AddSeconds(deadlineSeconds);
        var item = WorkKernel.Register(new WorkRegistration("w", WorkKinds.Workload, disposition, deadline), time.GetUtcNow()).Item!;

        var proofs = new List<LeaseProof>();        // every proof ever handed out, so stale ones get replayed
        var holderOfFence = new Dictionary<long, LeaseProof>();
        var tokens = 0;

        foreach (var op in ops)
        {
            var now = time.GetUtcNow();
            var before = item;
            LeaseProof Proof(int i) => proofs.Count == 0 ? new LeaseProof(Owners[0], "none", 0) : proofs[i % proofs.Count];

            var deaths = op is Sweep s
                ? Owners.Where((_, i) => (s.DeadOwnerMask & (1 << i)) != 0).Select(o => new DeathEvidence(o, "dead")).ToArray()
                : [];
            var decision = op switch
            {
                Advance a => Advanced(time, a.Seconds, item),
                Claim c => WorkKernel.Claim(item, Owners[c.Owner], $"t{++tokens}", Timings, now),
                Grant g => WorkKernel.Grant(item, item.Fence + g.FenceOffset, Owners[g.Owner], $"t{++tokens}", Timings, now),
                Renew r => WorkKernel.Renew(item, Proof(r.Proof), Timings, now),
                Start st => WorkKernel.RecordStarted(item, Proof(st.Proof), now),
                WriteUsage w => WorkKernel.Write(item, Proof(w.Proof), WorkEventKinds.Usage, "{}", now),
                Complete c => WorkKernel.Complete(item, Proof(c.Proof), c.Kind, null, now),
                Finish f => WorkKernel.Finish(item, f.Kind, null, now),
                RequestAbandon => WorkKernel.RequestAbandon(item, new AbandonRequest("consumer", now, null)),
                Revoke r => WorkKernel.Revoke(item, item.Fence + r.FenceOffset, "test"),
                Sweep => WorkKernel.Sweep(item, deaths, now),
                Drain d => WorkKernel.DrainOwner(item, Owners[d.Owner], now),
                _ => throw new InvalidOperationException(),
            };
            Assert.NotNull(decision.Item);
            if (!decision.Accepted || !decision.Changed)
            {
                Assert.Equal(before, decision.Item); // a refusal or a no-op changes nothing
            }

            item = decision.Item!;

            // Identity never changes; the fence only grows.
            Assert.Equal((before.Id, before.Kind, before.Disposition, before.Deadline), (item.Id, item.Kind, item.Disposition, item.Deadline));
            Assert.True(item.Fence >= before.Fence);

            // A terminal is never overwritten: nothing about a terminal item changes any more.
            if (before.IsTerminal)
            {
                Assert.Equal(before, item);
            }

            // First writers win.
            if (before.Started is not null)
            {
                Assert.Equal(before.Started, item.Started);
            }

            if (before.AbandonRequest is not null)
            {
                Assert.Equal(before.AbandonRequest, item.AbandonRequest);
            }

            // Each fence is held by at most one lease holder, ever; a lease-less item's fence was never held.
            if (item.Lease is { } lease)
            {
                Assert.Equal(item.Fence, lease.Fence);
                var proof = lease.Proof;
                if (holderOfFence.TryGetValue(lease.Fence, out var holder))
                {
                    Assert.Equal(holder, proof);
                }
                else
                {
                    holderOfFence[lease.Fence] = proof;
                    proofs.Add(proof);
                }
            }
            else if (!item.IsTerminal)
            {
                Assert.False(holderOfFence.ContainsKey(item.Fence), $"fence {item.Fence} was held but the item has no lease");
            }

            // A holder's write counts only at the current fence, from the holder itself.
            if (decision.Accepted && op is Renew or Start or WriteUsage or Complete)
            {
                var used = op switch
                {
                    Renew r => Proof(r.Proof),
                    Start st => Proof(st.Proof),
                    WriteUsage w => Proof(w.Proof),
                    Complete c => Proof(c.Proof),
                    _ => throw new InvalidOperationException(),
                };
                Assert.Equal(before.Lease?.Proof, used);
                Assert.Equal(before.Fence, used.Fence);
            }

            if (!before.IsTerminal && item.IsTerminal)
            {
                AssertTerminalIsJustified(op, before, item, deaths, now);
            }
        }
    }

    /// <summary>Elapsed time alone never terminalises work: every terminal has a writer with a reason.</summary>
    private static void AssertTerminalIsJustified(Op op, WorkItem before, WorkItem after, DeathEvidence[] deaths, DateTimeOffset now)
    {
        Assert.Null(after.Lease); // terminal and lease release happen in one step
        var terminal = after.Terminal!;
        switch (op)
        {
            case Complete:
                Assert.True(before.Lease!.IsLiveAt(now));
                break;
            case Finish:
                Assert.NotEqual(WorkTerminalKind.Abandoned, terminal.Kind);
                break;
            case Drain d:
                Assert.Equal(AbandonWriter.OwnerDrain, terminal.Abandon!.Writer);
                Assert.Equal(RecoveryDisposition.OwnerBound, before.Disposition);
                Assert.Equal(Owners[d.Owner].OwnerId, before.Started!.Owner.OwnerId);
                break;
            case Sweep:
                var deadline = before.Deadline is { } dl && now >= dl;
                var evidence = deaths.Any(e => e.Owner == before.Lease?.Owner || e.Owner == before.Started?.Owner);
                Assert.True(deadline || before.AbandonRequest is not null || evidence, "the sweep terminalised work on elapsed time alone");
                if (terminal.Abandon?.Writer == AbandonWriter.ReconciledRequest)
                {
                    Assert.NotNull(before.AbandonRequest);
                    Assert.True(before.Lease is null || !before.Lease.IsLiveAt(now) || deaths.Any(e => e.Owner == before.Lease.Owner));
                }

                break;
            default:
                Assert.Fail($"{op} terminalised the item");
                break;
        }
    }

    private static WorkDecision Advanced(FakeTimeProvider time, int seconds, WorkItem item)
    {
        time.Advance(TimeSpan.FromSeconds(seconds));
        return WorkDecision.Unchanged(item);
    }
}
