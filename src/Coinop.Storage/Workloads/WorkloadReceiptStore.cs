using Dapper;

namespace Coinop.Storage.Workloads;

/// <summary>An access receipt as the market relays it: sealed to the consumer, unreadable to the market.</summary>
public sealed record SealedReceipt(string WorkloadId, long Epoch, string ProviderId, string Sealed, DateTimeOffset CreatedAt);

/// <summary>Sealed access receipts, one per copy (epoch) of a workload.</summary>
public interface IWorkloadReceiptStore
{
    /// <summary>Stores the receipt under the workload fence; false when the copy no longer holds the lease.</summary>
    Task<bool> AddAsync(string workloadId, long epoch, string providerId, string sealedReceipt, CancellationToken cancellationToken);

    /// <summary>The receipt of the newest copy, if any copy sent one.</summary>
    Task<SealedReceipt?> LatestAsync(string workloadId, CancellationToken cancellationToken);

    /// <summary>Every copy's receipt, oldest epoch first.</summary>
    Task<IReadOnlyList<SealedReceipt>> ListAsync(string workloadId, CancellationToken cancellationToken);
}

/// <summary>The SQL implementation, shared by both dialects.</summary>
public sealed class WorkloadReceiptStore(Database database, TimeProvider time) : IWorkloadReceiptStore
{
    public Task<bool> AddAsync(string workloadId, long epoch, string providerId, string sealedReceipt, CancellationToken cancellationToken) =>
        database.WriteAsync(async (c, t) => await c.ExecuteAsync(new CommandDefinition(
            $"""
            INSERT INTO workload_receipts (workload_id, epoch, provider_id, sealed, created_at)
            SELECT @WorkloadId, @Epoch, @ProviderId, @Sealed, @CreatedAt
            WHERE {WorkloadFence.Holds}
            ON CONFLICT (workload_id, epoch) DO NOTHING
            """,
            new { WorkloadId = workloadId, Epoch = epoch, ProviderId = providerId, Sealed = sealedReceipt, CreatedAt = time.GetUtcNow().ToUnixTimeMilliseconds() },
            t, cancellationToken: cancellationToken)) == 1, cancellationToken);

    public Task<IReadOnlyList<SealedReceipt>> ListAsync(string workloadId, CancellationToken cancellationToken) =>
        database.ReadAsync<IReadOnlyList<SealedReceipt>>(async c =>
        {
            var rows = await c.QueryAsync<Row>(new CommandDefinition(
                """
                SELECT workload_id AS WorkloadId, epoch AS Epoch, provider_id AS ProviderId, sealed AS Sealed, created_at AS CreatedAt
                FROM workload_receipts WHERE workload_id = @workloadId ORDER BY epoch
                """, new { workloadId }, cancellationToken: cancellationToken));
            return [.. rows.Select(r => new SealedReceipt(r.WorkloadId, r.Epoch, r.ProviderId, r.Sealed, DateTimeOffset.FromUnixTimeMilliseconds(r.CreatedAt)))];
        }, cancellationToken);

    public Task<SealedReceipt?> LatestAsync(string workloadId, CancellationToken cancellationToken) =>
        database.ReadAsync(async c =>
        {
            var row = await c.QueryFirstOrDefaultAsync<Row>(new CommandDefinition(
                """
                SELECT workload_id AS WorkloadId, epoch AS Epoch, provider_id AS ProviderId, sealed AS Sealed, created_at AS CreatedAt
                FROM workload_receipts WHERE workload_id = @workloadId ORDER BY epoch DESC LIMIT 1
                """, new { workloadId }, cancellationToken: cancellationToken));
            return row is null ? null : new SealedReceipt(row.WorkloadId, row.Epoch, row.ProviderId, row.Sealed, DateTimeOffset.FromUnixTimeMilliseconds(row.CreatedAt));
        }, cancellationToken);

    private sealed class Row
    {
        public string WorkloadId { get; set; } = "";
        public long Epoch { get; set; }
        public string ProviderId { get; set; } = "";
        public string Sealed { get; set; } = "";
        public long CreatedAt { get; set; }
    }
}
