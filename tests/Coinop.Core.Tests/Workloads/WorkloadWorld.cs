using Coinop.Core.Protocol;
using Coinop.Core.Workloads;
using Microsoft.Extensions.Time.Testing;
using static Coinop.Core.Workloads.WorkloadEffect;
using static Coinop.Core.Workloads.WorkloadInput;

namespace Coinop.Core.Tests.Workloads;

/// <summary>
/// A small simulated world for one workload: the market's state machine, a supervisor that executes its effects, and
/// provider agents behind links that can be cut in either direction. Each agent runs the provider's real rules, the
/// same types <c>WorkloadAgent</c> wraps: <see cref="StopAfterRule"/> decides when its copy must stop (its watchdog fires
/// up to the clock slack late) and what the market hears when it ends, and <see cref="ReportOutbox{TReport}"/> delivers
/// those reports at least once across lost frames and reconnects. Time moves in fixed ticks on a
/// <see cref="FakeTimeProvider"/>; every tick checks the invariants, which throw on violation.
/// </summary>
internal sealed class WorkloadWorld
{
    /// <summary>The market's defaults: the tightest chain it runs (replaced exactly stop-after plus the slack after the last heartbeat).</summary>
    public static readonly WorkloadTimings Timings = WorkloadTimings.Default;

    public static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(250);

    private const string Id = "wl";
    private static readonly DateTimeOffset Origin = new(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);
    private readonly FakeTimeProvider _time = new(Origin);
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
        foreach (var agent in Agents)
        {
            agent.Reconnect();
        }

        var standbys = Agents.Skip(1).Take(spec.Standbys).Select(a => a.Name).ToArray();
        var submitted = WorkloadMachine.Submit(Id, spec, Agents[0].Name, standbys, Now);
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

    /// <summary>The agents' monotonic clock.</summary>
    private TimeSpan Monotonic => Now - Origin;

    public void Wait(int ticks)
    {
        for (var i = 0; i < ticks; i++)
        {
            _time.Advance(Tick);
            Step();
        }
    }

    /// <summary>The agent's process dies with its copy; everything it knew is gone.</summary>
    public void Crash(int agent)
    {
        var a = Agents[agent];
        a.Alive = false;
        a.Standby = false;
        a.Forget();
        CheckCopies();
    }

    public void Restart(int agent)
    {
        var a = Agents[agent];
        if (!a.Alive)
        {
            (a.Alive, a.NextHeartbeat) = (true, Now);
            a.Reconnect();
        }
    }

    public void Cut(int agent, bool toMarket, bool fromMarket)
    {
        Agents[agent].ToMarket &= !toMarket;
        Agents[agent].FromMarket &= !fromMarket;
    }

    /// <summary>The link works again: the agent is on a new session (the cut one died), so its outbox sends again what it could not prove delivered.</summary>
    public void Heal(int agent)
    {
        var a = Agents[agent];
        (a.ToMarket, a.FromMarket) = (true, true);
        if (a.Alive)
        {
            a.Reconnect();
        }
    }

    /// <summary>The running copy (if any) exits by itself with <paramref name="code"/>.</summary>
    public void Exit(int code)
    {
        if (Agents.FirstOrDefault(a => a.Copy is not null) is { } a)
        {
            Ended(a, a.Copy!.Value, code);
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
            if (_agentsHonourStopAfter)
            {
                // The watchdog fires up to the clock slack late: it sees the rule's deadline that much after it passed.
                foreach (var due in agent.Rule.Due(Monotonic - agent.StopLateness))
                {
                    Ended(agent, due.Epoch, exitCode: null);
                }
            }

            SendReports(agent);
            if (now < agent.NextHeartbeat)
            {
                continue;
            }

            agent.NextHeartbeat = now + Timings.HeartbeatInterval;
            if (agent.Rule.Count > 0 || agent.Standby || agent.Outbox.Unconfirmed > 0)
            {
                Heartbeat(agent);
            }
        }

        Apply(new WorkloadInput.Tick());
    }

    /// <summary>The agent's copy ended (exited with <paramref name="exitCode"/>, or killed): the rule says what the market hears.</summary>
    private void Ended(Agent agent, long epoch, int? exitCode)
    {
        var end = agent.Rule.Ended(Id, epoch);
        Assert.NotNull(end);
        switch (end.Value.Report)
        {
            case CopyEndReport.Exited:
                agent.Outbox.Add(new CopyExited(agent.Name, epoch, exitCode ?? 137));
                break;
            case CopyEndReport.Lost:
                agent.Outbox.Add(new CopyLost(agent.Name, epoch, end.Value.Reason!));
                break;
        }
    }

    /// <summary>The outbox's reports go out on the agent's link; while the link is cut towards the market they are lost on the way.</summary>
    private void SendReports(Agent agent)
    {
        while (agent.Outbox.Next() is { } next)
        {
            agent.Outbox.Sent(next.Report, next.Link, agent.Seq + 1);
            if (agent.ToMarket)
            {
                Apply(next.Report);
            }
        }
    }

    private void Heartbeat(Agent agent)
    {
        var seq = ++agent.Seq;
        var copies = agent.Rule.Heartbeat(seq, Monotonic);
        if (!agent.ToMarket)
        {
            return;
        }

        var renewed = new List<CopyRef>();
        foreach (var copy in copies)
        {
            var effects = Apply(new CopyHeartbeat(agent.Name, copy.Epoch)).Effects;
            // A copy that is not allowed to run is told to stop, whenever it shows up; one that is gets its lease renewed.
            var allowed = Workload.AllowedToRun(agent.Name, copy.Epoch);
            Assert.Equal(!allowed, effects.Any(e => e is StopCopy s && s.Provider == agent.Name && s.Epoch == copy.Epoch));
            Assert.Equal(allowed, effects.Contains(new RenewLease(agent.Name, copy.Epoch)));
            if (allowed)
            {
                renewed.Add(copy);
            }
        }

        if (agent.Standby)
        {
            Apply(new StandbyHeartbeat(agent.Name));
        }

        if (agent.FromMarket)
        {
            // The acknowledgement: the rule measures from when this heartbeat was sent, and the reports before it are delivered.
            agent.Rule.Acknowledged(seq, renewed);
            agent.Outbox.Acknowledged(agent.Link, seq);
        }
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
                case StopCopy s when Find(s.Provider) is { Alive: true, FromMarket: true } a && a.Copy is { } running && running <= s.Epoch:
                    Assert.True(a.Rule.StopByMarket(Id, s.Epoch));
                    Ended(a, running, exitCode: null);
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
            Assert.Null(agent.Rule.Start(Id, epoch, Timings.ProviderStopAfter, Monotonic));
            agent.NextHeartbeat = Now;
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

        /// <summary>The provider's rule, as the real agent runs it.</summary>
        public StopAfterRule Rule { get; private set; } = new();

        /// <summary>The provider's report outbox, as the real agent runs it.</summary>
        public ReportOutbox<WorkloadInput> Outbox { get; private set; } = new();

        /// <summary>The agent's current session (a new one after every reconnect).</summary>
        public object Link { get; private set; } = new();

        public long Seq { get; set; }

        /// <summary>The epoch of the copy this agent runs, if any.</summary>
        public long? Copy => Rule.Copies.Select(c => (long?)c.Epoch).FirstOrDefault();

        public bool Standby { get; set; }

        public DateTimeOffset NextHeartbeat { get; set; }

        /// <summary>A crash: the rule, the outbox and the session die with the process.</summary>
        public void Forget()
        {
            Rule = new StopAfterRule();
            Outbox = new ReportOutbox<WorkloadInput>();
        }

        public void Reconnect()
        {
            Outbox.Detach(Link);
            Link = new object();
            Outbox.Attach(Link);
        }
    }
}
