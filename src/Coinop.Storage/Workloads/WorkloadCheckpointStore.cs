using Dapper;

namespace Coinop.Storage.Workloads;

/// <summary>A stored checkpoint's description (its bytes are read separately).</summary>
public sealed record CheckpointInfo(string Id, string WorkloadId, long Epoch, string ProviderId, long Size, string Sha256, DateTimeOffset CreatedAt);

/// <summary>Encrypted checkpoints of workloads; the market can read none of them. The newest two per workload are kept.</summary>
public interface IWorkloadCheckpointStore
{
    /// <summary>Stores a checkpoint under the workload fence; returns its description, or null when the copy no longer holds the lease.</summary>
    Task<CheckpointInfo?> AddAsync(string workloadId, long epoch, string providerId, byte[] data, string sha256, CancellationToken cancellationToken);

    Task<CheckpointInfo?> FindAsync(string checkpointId, CancellationToken cancellationToken);

    Task<byte[]?> ReadAsync(string checkpointId, CancellationToken cancellationToken);
}

/// <summary>The SQL implementation, shared by both dialects.</summary>
public sealed class WorkloadCheckpointStore(Database database, TimeProvider time) : IWorkloadCheckpointStore
{
    /// <summary>The newest checkpoint is the one a respawn restores; one more is kept so a restore never races its replacement.</summary>
    public const int Kept = 2;

    private const string Columns = "id AS Id, workload_id AS WorkloadId, epoch AS Epoch, provider_id AS ProviderId, size AS Size, sha256 AS Sha256, created_at AS CreatedAt";

    public Task<CheckpointInfo?> AddAsync(string workloadId, long epoch, string providerId, byte[] data, string sha256, CancellationToken cancellationToken) =>
        database.WriteAsync<CheckpointInfo?>(async (c, t) =>
        {
            var info = new CheckpointInfo(Guid.NewGuid().ToString("N"), workloadId, epoch, providerId, data.LongLength, sha256,
                DateTimeOffset.FromUnixTimeMilliseconds(time.GetUtcNow().ToUnixTimeMilliseconds()));
            var inserted = await c.ExecuteAsync(new CommandDefinition(
                $"""
                INSERT INTO workload_checkpoints (id, workload_id, epoch, provider_id, size, sha256, data, created_at)
                SELECT @Id, @WorkloadId, @Epoch, @ProviderId, @Size, @Sha256, @Data, @CreatedAt
                WHERE {WorkloadFence.Holds}
                """,
                new
                {
                    info.Id,
                    WorkloadId = workloadId,
                    Epoch = epoch,
                    ProviderId = providerId,
                    info.Size,
                    Sha256 = sha256,
                    Data = data,
                    CreatedAt = info.CreatedAt.ToUnixTimeMilliseconds(),
                }, t, cancellationToken: cancellationToken));
            if (inserted == 0)
            {
                return null;
            }

            await c.ExecuteAsync(new CommandDefinition(
                """
                DELETE FROM workload_checkpoints
                WHERE workload_id = @workloadId AND id NOT IN (
                    SELECT id FROM workload_checkpoints WHERE workload_id = @workloadId ORDER BY created_at DESC, id DESC LIMIT @kept)
                """, new { workloadId, kept = Kept }, t, cancellationToken: cancellationToken));
            return info;
        }, cancellationToken);

    public Task<CheckpointInfo?> FindAsync(string checkpointId, CancellationToken cancellationToken) =>
        database.ReadAsync(async c =>
        {
            var row = await c.QuerySingleOrDefaultAsync<Row>(new CommandDefinition(
                $"SELECT {Columns} FROM workload_checkpoints WHERE id = @checkpointId", new { checkpointId }, cancellationToken: cancellationToken));
            return row is null
                ? null
                : new CheckpointInfo(row.Id, row.WorkloadId, row.Epoch, row.ProviderId, row.Size, row.Sha256, DateTimeOffset.FromUnixTimeMilliseconds(row.CreatedAt));
        }, cancellationToken);

    public Task<byte[]?> ReadAsync(string checkpointId, CancellationToken cancellationToken) =>
        database.ReadAsync(c => c.QuerySingleOrDefaultAsync<byte[]?>(new CommandDefinition(
            "SELECT data FROM workload_checkpoints WHERE id = @checkpointId", new { checkpointId }, cancellationToken: cancellationToken)), cancellationToken);

    private sealed class Row
    {
        public string Id { get; set; } = "";
        public string WorkloadId { get; set; } = "";
        public long Epoch { get; set; }
        public string ProviderId { get; set; } = "";
        public long Size { get; set; }
        public string Sha256 { get; set; } = "";
        public long CreatedAt { get; set; }
    }
}
