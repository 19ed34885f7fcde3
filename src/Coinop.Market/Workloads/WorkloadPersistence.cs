using Coinop.Core.Workloads;
using Coinop.Storage.Workloads;
using Microsoft.Extensions.Logging;

namespace Coinop.Market.Workloads;

/// <summary>
/// Saves a workload's next state with compare-and-set, and moves the money that follows a change of who serves it: the
/// time served is settled before the set of serving providers changes, and the account is closed with the refund once
/// the workload ends. Contact times alone are not saved (they are rebuilt after a restart).
/// </summary>
internal sealed class WorkloadPersistence(IWorkloadStore store, OpenWorkloads open, WorkloadSettlement settlement, WorkloadClock clock, ILogger logger)
{
    /// <summary>
    /// Saves when something more than contact times changed; false when another writer won (the entry then holds what
    /// that writer stored, or is no longer open).
    /// </summary>
    public async Task<bool> SaveAsync(OpenWorkload entry, Workload next, WorkloadTerms terms, CancellationToken ct, WorkloadSaveHook? payment = null)
    {
        var before = entry.Stored;
        if (payment is null && terms == before.Terms && !Significant(before.Workload, next))
        {
            entry.Stored = before with { Workload = next };
            return true;
        }

        var now = clock.Now();
        var serving = WorkloadSettlement.Serving(entry, before.Workload);
        if (!next.IsTerminal && !serving.SequenceEqual(WorkloadSettlement.Serving(entry, next)))
        {
            await settlement.SettleAsync(entry, now, ct);
        }

        var rates = entry.PlacedRates.Count == 0 ? before.Rates : before.Rates.Concat(entry.PlacedRates.Where(r => !before.Rates.ContainsKey(r.Key))).ToDictionary();
        var saved = await store.SaveAsync(before, next, terms, rates, ct, payment);
        entry.PlacedRates.Clear();
        if (saved is not null)
        {
            entry.Stored = saved;
            if (next.IsTerminal && !before.Workload.IsTerminal)
            {
                await settlement.CloseAsync(entry, serving, now < before.Workload.PaidUntil ? now : before.Workload.PaidUntil, ct);
            }

            return true;
        }

        // Another market node changed (or finished) it: continue from what it wrote.
        WorkloadSupervisorLog.Conflict(logger, next.Id);
        var current = await store.FindAsync(next.Id, ct);
        if (current is null || current.Workload.IsTerminal)
        {
            open.Remove(next.Id);
        }
        else
        {
            entry.Stored = current;
        }

        return false;
    }

    private static bool Significant(Workload before, Workload next) =>
        before.State != next.State || before.Since != next.Since || before.Reason != next.Reason || before.Provider != next.Provider
        || before.Epoch != next.Epoch || before.Revoking != next.Revoking || before.Attempts != next.Attempts
        || before.PaidUntil != next.PaidUntil || before.Checkpoint != next.Checkpoint || before.History.Count != next.History.Count
        || !before.Standbys.Select(s => s.Provider).SequenceEqual(next.Standbys.Select(s => s.Provider));
}
