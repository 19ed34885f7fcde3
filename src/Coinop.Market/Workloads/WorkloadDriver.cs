using Coinop.Core.Protocol;
using Coinop.Core.Workloads;
using Coinop.Storage.Workloads;
using Microsoft.Extensions.Logging;

namespace Coinop.Market.Workloads;

/// <summary>
/// Drives one workload's machine a step: the input and the time go in, the decision is saved (compare-and-set, before
/// any effect leaves the market), then its effects run in the machine's order, and the inputs they produce (a confirmed
/// revoke, a placement) are applied at once — so a promote or respawn is decided only after the store moved the fence.
/// A workload that reached a terminal state leaves the open set.
/// </summary>
internal sealed class WorkloadDriver(
    OpenWorkloads open,
    WorkloadPersistence persistence,
    WorkloadEffectInterpreter effects,
    WorkloadLogFeed logs,
    WorkloadTimings timings,
    WorkloadClock clock,
    ILogger logger)
{
    /// <summary>
    /// Applies an input, saves, then runs the effects. New <paramref name="terms"/> and the <paramref name="payment"/> that
    /// goes with them are saved only when the input is accepted. Null when another writer changed the workload meanwhile.
    /// </summary>
    /// <param name="renewed">Collects the copies whose lease was renewed (for a heartbeat's acknowledgement).</param>
    public async Task<WorkloadDecision?> ApplyAsync(OpenWorkload entry, WorkloadInput input, CancellationToken ct, WorkloadTerms? terms = null,
        List<CopyRef>? renewed = null, WorkloadSaveHook? payment = null)
    {
        var decision = WorkloadMachine.Apply(entry.Workload, input, timings, clock.Now());
        var accepted = decision.Rejection is null;
        if (!await persistence.SaveAsync(entry, decision.Next, accepted ? terms ?? entry.Stored.Terms : entry.Stored.Terms, ct, accepted ? payment : null))
        {
            return null;
        }

        await PerformAsync(entry, decision.Effects, ct, renewed);
        return decision;
    }

    /// <summary>Runs <paramref name="effectList"/> in order, then applies what they produced (unless the workload ended).</summary>
    public async Task PerformAsync(OpenWorkload entry, IReadOnlyList<WorkloadEffect> effectList, CancellationToken ct, List<CopyRef>? renewed = null)
    {
        var followUps = new List<WorkloadInput>();
        foreach (var effect in effectList)
        {
            if (await effects.InterpretAsync(entry, effect, renewed, ct) is { } followUp)
            {
                followUps.Add(followUp);
            }
        }

        open.UpdateCurrent(entry);
        var w = entry.Workload;
        if (w.IsTerminal)
        {
            open.Remove(w.Id);
            logs.Signal(w.Id);
            WorkloadSupervisorLog.Finished(logger, w.Id, Core.Text.WireEnum.Name(w.State), w.Reason ?? "");
            return;
        }

        foreach (var followUp in followUps)
        {
            await ApplyAsync(entry, followUp, ct);
        }
    }
}
