using Dapper;

namespace Coinop.Storage.Mint;

/// <summary>Where each Lightning backend's stream of paid invoices resumes after a restart (an index the node gave).</summary>
public interface ILightningCursorStore
{
    Task<string?> GetAsync(string backend, CancellationToken cancellationToken);

    Task SaveAsync(string backend, string resumeFrom, DateTimeOffset now, CancellationToken cancellationToken);
}

public sealed class LightningCursorStore(Database database) : ILightningCursorStore
{
    public Task<string?> GetAsync(string backend, CancellationToken cancellationToken) =>
        database.ReadAsync(c => c.QuerySingleOrDefaultAsync<string?>(new CommandDefinition(
            "SELECT resume_from FROM lightning_cursors WHERE backend = @backend", new { backend }, cancellationToken: cancellationToken)), cancellationToken);

    public Task SaveAsync(string backend, string resumeFrom, DateTimeOffset now, CancellationToken cancellationToken) =>
        database.WriteAsync((c, t) => c.ExecuteAsync(new CommandDefinition(
            """
            INSERT INTO lightning_cursors (backend, resume_from, updated_at) VALUES (@backend, @resumeFrom, @now)
            ON CONFLICT (backend) DO UPDATE SET resume_from = excluded.resume_from, updated_at = excluded.updated_at
            """,
            new { backend, resumeFrom, now = now.ToUnixTimeMilliseconds() }, t, cancellationToken: cancellationToken)), cancellationToken);
}
