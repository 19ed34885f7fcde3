namespace Coinop.Storage.Workloads;

/// <summary>
/// The condition every copy write (usage, checkpoint, receipt) is inserted under: the workload's kernel row still
/// has the copy's epoch as its fence, is open, and leases it to that provider. A revoked copy (the fence moved on)
/// or a finished workload can write nothing, whatever the market node that received the write believes.
/// </summary>
internal static class WorkloadFence
{
    /// <summary>SQL over the parameters <c>@WorkloadId</c>, <c>@Epoch</c> and <c>@ProviderId</c>.</summary>
    public const string Holds = """
        EXISTS (SELECT 1 FROM work_items
                WHERE id = @WorkloadId AND fence = @Epoch AND terminal IS NULL AND lease_owner_id = @ProviderId)
        """;

    /// <summary>How long after a workload ended the copy that held it may still deliver its last usage window.</summary>
    public const string LastWindowGraceMs = "300000";

    /// <summary>
    /// SQL over <c>@WorkloadId</c>, <c>@Epoch</c>, <c>@ProviderId</c> and <c>@ReceivedAt</c>: the workload ended
    /// (completed, failed or cancelled; not abandoned) while that provider held its lease at that epoch — the fence never
    /// moved on, so the copy never lost its lease — and ended no more than <see cref="LastWindowGraceMs"/> ago. The last
    /// usage window of a copy the market stopped (a cancel, the paid time running out) arrives after the end; it is the
    /// only write such a copy may still make.
    /// </summary>
    public const string HeldAtEnd = $"""
        EXISTS (SELECT 1 FROM work_items w
                WHERE w.id = @WorkloadId AND w.fence = @Epoch AND w.terminal IN ('completed', 'failed', 'cancelled')
                  AND w.terminal_at >= @ReceivedAt - {LastWindowGraceMs}
                  AND EXISTS (SELECT 1 FROM work_events e
                              WHERE e.work_id = w.id AND e.fence = @Epoch AND e.owner_id = @ProviderId AND e.kind = w.terminal))
        """;
}
