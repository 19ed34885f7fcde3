using Coinop.Core.Workloads;
using Dapper;

namespace Coinop.Storage.Workloads;

/// <summary>The providers' signed usage records, kept as received: <c>{payload, signature, public_key}</c> plus the parsed figures.</summary>
public interface IWorkloadUsageStore
{
    /// <summary>
    /// Adds a record the caller verified, under the workload fence (see <see cref="WorkloadFence"/>): from the copy that
    /// holds the workload's lease, or the last window of the copy that held it when the workload ended. False when the
    /// copy lost its lease (its epoch was revoked), the workload ended long ago, or the window was already recorded.
    /// </summary>
    Task<bool> AddAsync(string providerId, UsageRecord record, SignedUsageRecord signed, CancellationToken cancellationToken);

    /// <summary>Every record of the workload in the order of its windows.</summary>
    Task<IReadOnlyList<SignedUsageRecord>> ListAsync(string workloadId, CancellationToken cancellationToken);
}

/// <summary>The SQL implementation, shared by both dialects.</summary>
public sealed class WorkloadUsageStore(Database database, TimeProvider time) : IWorkloadUsageStore
{
    public Task<bool> AddAsync(string providerId, UsageRecord record, SignedUsageRecord signed, CancellationToken cancellationToken) =>
        database.WriteAsync(async (c, t) => await c.ExecuteAsync(new CommandDefinition(
            $"""
            INSERT INTO workload_usage (workload_id, epoch, window_start, window_end, provider_id, cpu_core_seconds, memory_mib_seconds,
                net_bytes, wall_seconds, payload, signature, public_key, received_at)
            SELECT @WorkloadId, @Epoch, @WindowStart, @WindowEnd, @ProviderId, @CpuCoreSeconds, @MemoryMibSeconds,
                @NetBytes, @WallSeconds, @Payload, @Signature, @PublicKey, @ReceivedAt
            WHERE {WorkloadFence.Holds} OR {WorkloadFence.HeldAtEnd}
            ON CONFLICT (workload_id, epoch, window_start) DO NOTHING
            """,
            new
            {
                record.WorkloadId,
                record.Epoch,
                record.WindowStart,
                record.WindowEnd,
                ProviderId = providerId,
                record.CpuCoreSeconds,
                record.MemoryMibSeconds,
                record.NetBytes,
                record.WallSeconds,
                signed.Payload,
                signed.Signature,
                signed.PublicKey,
                ReceivedAt = time.GetUtcNow().ToUnixTimeMilliseconds(),
            }, t, cancellationToken: cancellationToken)) == 1, cancellationToken);

    public Task<IReadOnlyList<SignedUsageRecord>> ListAsync(string workloadId, CancellationToken cancellationToken) =>
        database.ReadAsync<IReadOnlyList<SignedUsageRecord>>(async c =>
        {
            var rows = await c.QueryAsync<(string Payload, string Signature, string PublicKey)>(new CommandDefinition(
                "SELECT payload, signature, public_key FROM workload_usage WHERE workload_id = @workloadId ORDER BY epoch, window_start",
                new { workloadId }, cancellationToken: cancellationToken));
            return [.. rows.Select(r => new SignedUsageRecord(r.Payload, r.Signature, r.PublicKey))];
        }, cancellationToken);
}
