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
}
