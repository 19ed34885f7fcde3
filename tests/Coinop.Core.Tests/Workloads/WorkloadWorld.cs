using Coinop.Core.Workloads;
using Microsoft.Extensions.Time.Testing;
using static Coinop.Core.Workloads.WorkloadEffect;
using static Coinop.Core.Workloads.WorkloadInput;

namespace Coinop.Core.Tests.Workloads;

/// <summary>
/// A small simulated world for one workload: the market's state machine, a supervisor that executes its effects, and
/// provider agents behind links that can be cut in either direction. Agents follow the provider-side rule: stop the
/// copy <see cref="WorkloadTimings.ProviderStopAfter"/> (plus up to the clock slack) after sending the last heartbeat the
/// market acknowledged, never restart a copy on their own, and report a copy they lost once they can. Time moves in
/// fixed ticks on a <see cref="FakeTimeProvider"/>; every tick checks the invariants, which throw on violation.
/// </summary>
internal sealed class WorkloadWorld
{
    public static readonly WorkloadTimings Timings = new(
        HeartbeatInterval: TimeSpan.FromSeconds(1), ProviderStopAfter: TimeSpan.FromSeconds(6), ClockSlack: TimeSpan.FromSeconds(2),
        SuspectAfter: TimeSpan.FromSeconds(9), EvictAfter: TimeSpan.FromSeconds(15));

    public static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(250);

    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 25, 12, 0, 0, TimeSpan.Zero));
    private readonly Random _random;
    private readonly bool _agentsHonourStopAfter;
    private readonly List<(DateTimeOffset Due, WorkloadInput Input)> _supervisorQueue = [];
    private readonly HashSet<long> _revokeConfirmed = [];
    private readonly HashSet<long> _revokeRequested = [];
    private long _lastStartedEpoch;
    private bool _finished;

    public WorkloadWorld(WorkloadSpec spec, int agentCount, int seed, bool agentsHonourStopAfter = true)
    {
        _random = new Random(seed);
        _agentsHonourStopAfter = agentsHonourStopAfter;
        Agents = [.. Enumerable.Range(0, agentCount).Select(i => new Agent($"P{i}", Lateness()))];
        var standbys = Agents.Skip(1).Take(spec.Standbys).Select(a => a.Name).ToArray();
        var submitted = WorkloadMachine.Submit("wl", spec, Agents[0].Name, standbys, Now);
        Workload = submitted.Next;
        Execute(submitted.Effects);
        Check(Workload);
    }

    public Workload Workload { get; private set; }

    public IReadOnlyList<Agent> Agents { get; }

    /// <summary>The highest epoch a copy was started at (above 1: the world failed over).</summary>
    public long LastStartedEpoch => _lastStartedEpoch;

    /// <summary>The most copies that ran at the same instant.</summary>
    public int MaxConcurrentCopies { get; private set; }

    private DateTimeOffset Now => _time.GetUtcNow();

    public void Wait(int ticks)
    {
        for (var i = 0; i < ticks; i++)
        {
            _time.Advance(Tick);
            Step();
        }
    }

    public void Crash(int agent)
    {
        var a = Agents[agent];
        (a.Alive, a.Copy, a.Standby, a.PendingReport) = (false, null, false, null);
        CheckCopies();
    }

    public void Restart(int agent)
    {
        var a = Agents[agent];
        if (!a.Alive)
        {
            (a.Alive, a.NextHeartbeat) = (true, Now);
        }
    }

    public void Cut(int agent, bool toMarket, bool fromMarket)
    {
        Agents[agent].ToMarket &= !toMarket;
        Agents[agent].FromMarket &= !fromMarket;
    }

    public void Heal(int agent) => (Agents[agent].ToMarket, Agents[agent].FromMarket) = (true, true);

    /// <summary>The running copy (if any) exits by itself with <paramref name="code"/>.</summary>
    public void Exit(int code)
    {
        if (Agents.FirstOrDefault(a => a.Copy is not null) is { } a)
        {
            a.PendingReport = (a.Copy!.Value, code);
            a.Copy = null;
        }
    }

    public void Cancel() => Apply(new Cancel("consumer"));

    public void TopUp(int seconds)
    {
        Apply(new TopUp(TimeSpan.FromSeconds(seconds)));
    }

    private void Step()
    {
        var now = Now;
        foreach (var due in _supervisorQueue.Where(q => q.Due <= now).ToList())
        {
            _supervisorQueue.Remove(due);
            if (due.Input is LeaseRevoked r)
            {
                _revokeConfirmed.Add(r.Epoch); // the store revoked it before the supervisor says so
            }

            Apply(due.Input);
        }

        foreach (var agent in Agents.Where(a => a.Alive))
        {
            if (agent.Copy is { } epoch && _agentsHonourStopAfter && now >= agent.LastAckedSend + Timings.ProviderStopAfter + agent.StopLateness)
            {
                agent.Copy = null;
                agent.PendingReport = (epoch, null);
            }

            if (agent.PendingReport is { } report && agent.ToMarket)
            {
                agent.PendingReport = null;
                Apply(report.ExitCode is { } code
                    ? new CopyExited(agent.Name, report.Epoch, code)
                    : new CopyLost(agent.Name, report.Epoch, "lost contact with the market"));
            }

            if (now < agent.NextHeartbeat)
            {
                continue;
            }

            agent.NextHeartbeat = now + Timings.HeartbeatInterval;
            if (agent.Copy is { } running && agent.ToMarket)
            {
                var effects = Apply(new CopyHeartbeat(agent.Name, running)).Effects;
                // A copy that is not allowed to run is told to stop, whenever it shows up; one that is gets its lease renewed.
                var allowed = Workload.AllowedToRun(agent.Name, running);
                Assert.Equal(!allowed, effects.Any(e => e is StopCopy s && s.Provider == agent.Name && s.Epoch == running));
                Assert.Equal(allowed, effects.Contains(new RenewLease(agent.Name, running)));
                if (allowed && agent.FromMarket && agent.Copy == running)
                {
                    agent.LastAckedSend = now; // the ack measures from when this heartbeat was sent
                }
            }

            if (agent.Standby && agent.ToMarket)
            {
                Apply(new StandbyHeartbeat(agent.Name));
            }
        }

        Apply(new WorkloadInput.Tick());
    }

    private WorkloadDecision Apply(WorkloadInput input)
    {
        var before = Workload;
        var decision = WorkloadMachine.Apply(before, input, Timings, Now);
        Workload = decision.Next;
        CheckTransition(before, Workload);
        Execute(decision.Effects);
        Check(Workload);
        return decision;
    }

    private void Execute(IReadOnlyList<WorkloadEffect> effects)
    {
        foreach (var effect in effects)
        {
            switch (effect)
            {
                case StartCopy s:
                    Start(s.Provider, s.Epoch);
                    break;
                case PromoteStandby p:
                    Start(p.Provider, p.Epoch);
                    break;
                case StopCopy s when Find(s.Provider) is { Alive: true, FromMarket: true } a && a.Copy == s.Epoch:
                    a.Copy = null;
                    break;
                case RevokeLease r:
                    Assert.True(_revokeRequested.Add(r.Epoch), $"epoch {r.Epoch} revoked twice");
                    Later(new LeaseRevoked(r.Epoch));
                    break;
                case PlaceCopy p:
                    var candidates = Agents.Where(a => a.Alive && a.ToMarket && a.Copy is null && a.Name != p.Avoid).ToList();
                    Later(candidates.Count == 0
                        ? new PlacementFailed(p.Epoch, "no capacity")
                        : new CopyPlaced(candidates[_random.Next(candidates.Count)].Name, p.Epoch));
                    break;
                case ReserveStandby r:
                    Find(r.Provider)!.Standby = true;
                    break;
                case ReleaseStandby r:
                    Find(r.Provider)!.Standby = false;
                    break;
                case FinishWork:
                    Assert.False(_finished, "the work item was finished twice");
                    _finished = true;
                    break;
            }
        }
    }

    /// <summary>The supervisor answers (revoke confirmed, placement found) a tick or two later.</summary>
    private void Later(WorkloadInput input) => _supervisorQueue.Add((Now + Tick * _random.Next(1, 3), input));

    private void Start(string provider, long epoch)
    {
        // Every start is at a new, higher epoch, and only once the previous one was confirmed revoked.
        Assert.True(epoch > _lastStartedEpoch, $"epoch {epoch} started after {_lastStartedEpoch}");
        Assert.True(epoch == 1 || _revokeConfirmed.Contains(epoch - 1), $"epoch {epoch} started before epoch {epoch - 1} was revoked");
        _lastStartedEpoch = epoch;
        var agent = Find(provider)!;
        agent.Standby = false;
        if (agent is { Alive: true, FromMarket: true })
        {
            Assert.Null(agent.Copy);
            (agent.Copy, agent.LastAckedSend, agent.NextHeartbeat) = (epoch, Now, Now);
        }

        CheckCopies();
    }

    private void CheckTransition(Workload before, Workload after)
    {
        Assert.True(after.Epoch >= before.Epoch, "the epoch went back");
        Assert.True(after.Attempts >= before.Attempts, "attempts went back");
        Assert.True(after.Attempts <= after.Spec.Restart.MaxAttempts, $"{after.Attempts} attempts under {after.Spec.Restart}");
        Assert.True(after.History.Count >= before.History.Count && after.History.Take(before.History.Count).SequenceEqual(before.History),
            "history was rewritten");
        if (before.IsTerminal)
        {
            Assert.Equal((before.State, before.Reason, before.Since), (after.State, after.Reason, after.Since));
        }

        foreach (var revoked in _revokeRequested)
        {
            Assert.False(Agents.Any(a => after.AllowedToRun(a.Name, revoked)), $"revoked epoch {revoked} allowed to run again");
        }
    }

    private void Check(Workload w)
    {
        Assert.Equal(w.State, w.History[^1].State);
        CheckCopies();
    }

    private void CheckCopies()
    {
        var running = Agents.Count(a => a.Copy is not null);
        MaxConcurrentCopies = Math.Max(MaxConcurrentCopies, running);
        Assert.True(running <= 1, $"{running} copies running at {Now:HH:mm:ss.fff}: " +
            string.Join(", ", Agents.Where(a => a.Copy is not null).Select(a => $"{a.Name}@{a.Copy}")));
    }

    private Agent? Find(string name) => Agents.FirstOrDefault(a => a.Name == name);

    private TimeSpan Lateness() => Timings.ClockSlack * _random.NextDouble();

    internal sealed class Agent(string name, TimeSpan stopLateness)
    {
        public string Name { get; } = name;

        /// <summary>How late this agent's stop timer fires (up to the clock slack).</summary>
        public TimeSpan StopLateness { get; } = stopLateness;

        public bool Alive { get; set; } = true;

        public bool ToMarket { get; set; } = true;

        public bool FromMarket { get; set; } = true;

        /// <summary>The epoch of the copy this agent runs, if any.</summary>
        public long? Copy { get; set; }

        public bool Standby { get; set; }

        public DateTimeOffset LastAckedSend { get; set; }

        public DateTimeOffset NextHeartbeat { get; set; }

        /// <summary>A copy that ended here (exit code, or null when the agent stopped it) and still has to be reported.</summary>
        public (long Epoch, int? ExitCode)? PendingReport { get; set; }
    }
}
