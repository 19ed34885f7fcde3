using Coinop.Core.Work;
using Coinop.Core.Workloads;
using Coinop.Storage.Work;
using Coinop.Storage.Workloads;
using Microsoft.Extensions.Logging;

namespace Coinop.Market.Workloads;

/// <summary>What consumers ask of the supervisor: a placement plan, a submit on the planned providers, a cancel or a top-up.</summary>
internal sealed class ConsumerWorkloadCommands(
    OpenWorkloads open,
    WorkloadDriver driver,
    IWorkStore work,
    IWorkloadStore store,
    PlacementCandidates placement,
    WorkloadMetrics metrics,
    WorkloadClock clock,
    ILogger logger)
{
    public (PlacementPlan?, string?) Plan(PlanCommand plan) =>
        WorkloadPlacement.Plan(plan.Spec, plan.Pinned, placement.Collect(), plan.KeyHolders);

    public async Task<SubmitOutcome> SubmitAsync(SubmitCommand submit, CancellationToken ct)
    {
        // The plan was made before payment; the providers must still be there with room.
        var candidates = placement.Collect().ToDictionary(c => c.ProviderId, StringComparer.Ordinal);
        var chosen = new[] { submit.Plan.Primary }.Concat(submit.Plan.Standbys).ToList();
        if (chosen.Any(c => !candidates.TryGetValue(c.ProviderId, out var now) || !now.Fits(submit.Spec)))
        {
            return new SubmitOutcome(null, "the planned providers no longer have room; try again", Capacity: true);
        }

        var registered = await work.RegisterAsync(new WorkRegistration(submit.Id, WorkKinds.Workload, RecoveryDisposition.Rerunnable), ct);
        if (!registered.Accepted)
        {
            return new SubmitOutcome(null, registered.Refusal == WorkRefusal.AlreadyRegistered
                ? "a workload with this id exists"
                : $"could not register the workload: {registered.Refusal}");
        }

        var decision = WorkloadMachine.Submit(submit.Id, submit.Spec, submit.Plan.Primary.ProviderId, [.. submit.Plan.Standbys.Select(s => s.ProviderId)], clock.Now());
        var rates = chosen.ToDictionary(c => c.ProviderId, c => c.Price.MsatPerSecond(submit.Spec.CpuCores, submit.Spec.MemoryMb), StringComparer.Ordinal);
        if (!await store.InsertAsync(decision.Next, submit.Terms, submit.SealedKeys, rates, ct, submit.Payment))
        {
            return new SubmitOutcome(null, "a workload with this id exists");
        }

        var entry = new OpenWorkload((await store.FindAsync(submit.Id, ct))!);
        open.Add(entry);
        metrics.Submitted.Add(1);
        WorkloadSupervisorLog.Submitted(logger, submit.Id, submit.Plan.Primary.ProviderId, submit.Spec.Standbys, submit.Spec.Command);
        await driver.PerformAsync(entry, decision.Effects, ct);
        return new SubmitOutcome(entry.Stored, null);
    }

    /// <summary>A cancel or a top-up (whose payment is saved with the longer lease, only if the machine accepts it).</summary>
    public async Task<CommandOutcome> ApplyAsync(ConsumerCommand command, CancellationToken ct)
    {
        if (!open.TryGet(command.WorkloadId, out var entry))
        {
            var finished = await store.FindAsync(command.WorkloadId, ct);
            return finished is null
                ? new CommandOutcome(null, "no such workload", NotFound: true)
                : new CommandOutcome(finished, "workload is " + Core.Text.WireEnum.Name(finished.Workload.State));
        }

        var terms = command.PaidMsat > 0 ? entry.Stored.Terms with { PaidMsat = entry.Stored.Terms.PaidMsat + command.PaidMsat } : null;
        var decision = await driver.ApplyAsync(entry, command.Input, ct, terms, payment: command.Payment);
        return new CommandOutcome(entry.Stored, decision is null ? "the workload was changed meanwhile (by another market node); try again" : decision.Rejection);
    }
}
