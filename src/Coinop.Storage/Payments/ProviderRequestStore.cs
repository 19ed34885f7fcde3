using System.Data.Common;
using Dapper;

namespace Coinop.Storage.Payments;

/// <summary>A signed provider request as recorded under its nonce, with what it returned (e.g. a payout token).</summary>
public sealed record ProviderRequestRecord(
    string Nonce,
    string ProviderId,
    string Method,
    string Path,
    long? AmountSat,
    DateTimeOffset SignedAt,
    DateTimeOffset ReceivedAt,
    string? Result);

/// <summary>
/// The nonces of signed provider requests. A nonce is a primary key: the first request with it is served, every
/// later one (a replay, or a retry after a lost answer) finds it taken and gets the recorded result instead.
/// </summary>
public interface IProviderRequestStore
{
    /// <summary>Records the request inside the caller's transaction; false when its nonce was used before.</summary>
    Task<bool> TryRecordAsync(DbConnection c, DbTransaction t, ProviderRequestRecord request, CancellationToken cancellationToken);

    Task SetResultAsync(DbConnection c, DbTransaction t, string nonce, string result, CancellationToken cancellationToken);

    Task<ProviderRequestRecord?> FindAsync(string nonce, CancellationToken cancellationToken);
}

public sealed class ProviderRequestStore(Database database) : IProviderRequestStore
{
    public async Task<bool> TryRecordAsync(DbConnection c, DbTransaction t, ProviderRequestRecord r, CancellationToken cancellationToken) =>
        await c.ExecuteAsync(new CommandDefinition(
            """
            INSERT INTO provider_requests (nonce, provider_id, method, path, amount_sat, signed_at, received_at, result)
            VALUES (@Nonce, @ProviderId, @Method, @Path, @AmountSat, @SignedAt, @ReceivedAt, @Result)
            ON CONFLICT (nonce) DO NOTHING
            """,
            new
            {
                r.Nonce,
                r.ProviderId,
                r.Method,
                r.Path,
                r.AmountSat,
                SignedAt = r.SignedAt.ToUnixTimeMilliseconds(),
                ReceivedAt = r.ReceivedAt.ToUnixTimeMilliseconds(),
                r.Result,
            }, t, cancellationToken: cancellationToken)) == 1;

    public Task SetResultAsync(DbConnection c, DbTransaction t, string nonce, string result, CancellationToken cancellationToken) =>
        c.ExecuteAsync(new CommandDefinition(
            "UPDATE provider_requests SET result = @result WHERE nonce = @nonce", new { nonce, result }, t, cancellationToken: cancellationToken));

    public Task<ProviderRequestRecord?> FindAsync(string nonce, CancellationToken cancellationToken) =>
        database.ReadAsync(async c => (await c.QuerySingleOrDefaultAsync<Row>(new CommandDefinition(
            """
            SELECT nonce AS Nonce, provider_id AS ProviderId, method AS Method, path AS Path, amount_sat AS AmountSat,
                   signed_at AS SignedAt, received_at AS ReceivedAt, result AS Result
            FROM provider_requests WHERE nonce = @nonce
            """, new { nonce }, cancellationToken: cancellationToken)))?.ToRecord(), cancellationToken);

    private sealed class Row
    {
        public string Nonce { get; set; } = "";
        public string ProviderId { get; set; } = "";
        public string Method { get; set; } = "";
        public string Path { get; set; } = "";
        public long? AmountSat { get; set; }
        public long SignedAt { get; set; }
        public long ReceivedAt { get; set; }
        public string? Result { get; set; }

        public ProviderRequestRecord ToRecord() => new(Nonce, ProviderId, Method, Path, AmountSat,
            DateTimeOffset.FromUnixTimeMilliseconds(SignedAt), DateTimeOffset.FromUnixTimeMilliseconds(ReceivedAt), Result);
    }
}
