using Dapper;

namespace Coinop.Storage.Responses;

/// <summary>
/// A Responses API answer as the market keeps it: the response object (what <c>GET /v1/responses/{id}</c> returns),
/// the conversation up to it as chat messages (what <c>previous_response_id</c> continues), and who may read it.
/// </summary>
/// <param name="Payer">The account of whoever paid for it (null when nothing identified the consumer).</param>
public sealed record StoredResponse(
    string Id,
    string? Payer,
    DateTimeOffset CreatedAt,
    DateTimeOffset ExpiresAt,
    string Response,
    string Conversation);

/// <summary>Responses kept for their retention, shared by every market node on the same store.</summary>
public interface IResponseStore
{
    Task AddAsync(StoredResponse response, CancellationToken cancellationToken);

    /// <summary>The response, unless it is unknown or expired at <paramref name="now"/>.</summary>
    Task<StoredResponse?> FindAsync(string id, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>Deletes responses expired at <paramref name="now"/>; returns how many.</summary>
    Task<int> PruneAsync(DateTimeOffset now, CancellationToken cancellationToken);
}

/// <summary>The SQL implementation, shared by both dialects.</summary>
public sealed class ResponseStore(Database database) : IResponseStore
{
    public Task AddAsync(StoredResponse response, CancellationToken cancellationToken) =>
        database.WriteAsync((c, t) => c.ExecuteAsync(new CommandDefinition(
            """
            INSERT INTO responses (id, payer, created_at, expires_at, response, conversation)
            VALUES (@Id, @Payer, @CreatedAt, @ExpiresAt, @Response, @Conversation)
            ON CONFLICT (id) DO NOTHING
            """,
            new
            {
                response.Id,
                response.Payer,
                CreatedAt = response.CreatedAt.ToUnixTimeMilliseconds(),
                ExpiresAt = response.ExpiresAt.ToUnixTimeMilliseconds(),
                response.Response,
                response.Conversation,
            }, t, cancellationToken: cancellationToken)), cancellationToken);

    public Task<StoredResponse?> FindAsync(string id, DateTimeOffset now, CancellationToken cancellationToken) =>
        database.ReadAsync(async c =>
        {
            var row = await c.QuerySingleOrDefaultAsync<Row>(new CommandDefinition(
                """
                SELECT id AS Id, payer AS Payer, created_at AS CreatedAt, expires_at AS ExpiresAt, response AS Response, conversation AS Conversation
                FROM responses WHERE id = @id AND expires_at > @now
                """, new { id, now = now.ToUnixTimeMilliseconds() }, cancellationToken: cancellationToken));
            return row is null
                ? null
                : new StoredResponse(row.Id, row.Payer, DateTimeOffset.FromUnixTimeMilliseconds(row.CreatedAt),
                    DateTimeOffset.FromUnixTimeMilliseconds(row.ExpiresAt), row.Response, row.Conversation);
        }, cancellationToken);

    public Task<int> PruneAsync(DateTimeOffset now, CancellationToken cancellationToken) =>
        database.WriteAsync((c, t) => c.ExecuteAsync(new CommandDefinition(
            "DELETE FROM responses WHERE expires_at <= @now", new { now = now.ToUnixTimeMilliseconds() }, t, cancellationToken: cancellationToken)),
            cancellationToken);

    private sealed class Row
    {
        public string Id { get; set; } = "";
        public string? Payer { get; set; }
        public long CreatedAt { get; set; }
        public long ExpiresAt { get; set; }
        public string Response { get; set; } = "";
        public string Conversation { get; set; } = "";
    }
}
