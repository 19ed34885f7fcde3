using Dapper;

namespace Coinop.Storage.Workloads;

/// <summary>A piece of a copy's output as received; <see cref="Seq"/> orders all output of the market.</summary>
public sealed record WorkloadLogEntry(long Seq, string WorkloadId, long Epoch, string Stream, DateTimeOffset At, byte[] Data);

/// <summary>A piece of output to store.</summary>
public sealed record WorkloadLogChunk(string WorkloadId, long Epoch, string Stream, DateTimeOffset At, byte[] Data);

/// <summary>The tail of every workload's output: the newest chunks of each (<see cref="WorkloadLogStore.DefaultKeptChunks"/>), older ones dropped.</summary>
public interface IWorkloadLogStore
{
    /// <summary>Appends chunks (of known workloads) in one transaction and trims the workloads they belong to.</summary>
    Task AppendAsync(IReadOnlyList<WorkloadLogChunk> chunks, CancellationToken cancellationToken);

    /// <summary>The workload's output after <paramref name="afterSeq"/>, oldest first, at most <paramref name="limit"/> chunks.</summary>
    Task<IReadOnlyList<WorkloadLogEntry>> ReadAsync(string workloadId, long afterSeq, int limit, CancellationToken cancellationToken);
}

/// <summary>The SQL implementation, shared by both dialects.</summary>
public sealed class WorkloadLogStore(Database database, int keptChunks = WorkloadLogStore.DefaultKeptChunks) : IWorkloadLogStore
{
    /// <summary>Chunks kept per workload (each at most 64 KiB, usually far less).</summary>
    public const int DefaultKeptChunks = 2000;

    public Task AppendAsync(IReadOnlyList<WorkloadLogChunk> chunks, CancellationToken cancellationToken) =>
        chunks.Count == 0
            ? Task.CompletedTask
            : database.WriteAsync(async (c, t) =>
            {
                foreach (var chunk in chunks)
                {
                    await c.ExecuteAsync(new CommandDefinition(
                        "INSERT INTO workload_logs (workload_id, epoch, stream, at, data) VALUES (@WorkloadId, @Epoch, @Stream, @At, @Data)",
                        new { chunk.WorkloadId, chunk.Epoch, chunk.Stream, At = chunk.At.ToUnixTimeMilliseconds(), chunk.Data }, t,
                        cancellationToken: cancellationToken));
                }

                foreach (var workloadId in chunks.Select(ch => ch.WorkloadId).Distinct(StringComparer.Ordinal))
                {
                    await c.ExecuteAsync(new CommandDefinition(
                        """
                        DELETE FROM workload_logs WHERE workload_id = @workloadId AND seq <= (
                            SELECT seq FROM workload_logs WHERE workload_id = @workloadId ORDER BY seq DESC LIMIT 1 OFFSET @kept)
                        """, new { workloadId, kept = keptChunks }, t, cancellationToken: cancellationToken));
                }
            }, cancellationToken);

    public Task<IReadOnlyList<WorkloadLogEntry>> ReadAsync(string workloadId, long afterSeq, int limit, CancellationToken cancellationToken) =>
        database.ReadAsync<IReadOnlyList<WorkloadLogEntry>>(async c =>
        {
            var rows = await c.QueryAsync<(long Seq, string WorkloadId, long Epoch, string Stream, long At, byte[] Data)>(new CommandDefinition(
                """
                SELECT seq, workload_id, epoch, stream, at, data FROM workload_logs
                WHERE workload_id = @workloadId AND seq > @afterSeq ORDER BY seq LIMIT @limit
                """, new { workloadId, afterSeq, limit }, cancellationToken: cancellationToken));
            return [.. rows.Select(r => new WorkloadLogEntry(r.Seq, r.WorkloadId, r.Epoch, r.Stream, DateTimeOffset.FromUnixTimeMilliseconds(r.At), r.Data))];
        }, cancellationToken);
}
