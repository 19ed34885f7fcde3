using System.Data.Common;
using Dapper;

namespace Coinop.Storage.Payments;

/// <summary>A proof kept ready as change: its secret, signature and DLEQ proof (JSON, with the blinding factor).</summary>
public sealed record StockedProof(string Secret, long Amount, string KeysetId, string C, string? Dleq);

/// <summary>
/// The market's stock of ready change. Taking a proof deletes it inside the settle transaction, so a proof is handed
/// out once: on PostgreSQL concurrent takers skip each other's locked rows, on SQLite the writer lock serializes them.
/// </summary>
public interface IChangeStockStore
{
    /// <summary>How many proofs of each amount are in stock.</summary>
    Task<IReadOnlyDictionary<long, int>> CountsAsync(CancellationToken cancellationToken);

    Task AddAsync(DbConnection c, DbTransaction t, IReadOnlyList<StockedProof> proofs, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>Takes one proof of <paramref name="amount"/> out of stock; null when there is none.</summary>
    Task<StockedProof?> TakeAsync(DbConnection c, DbTransaction t, long amount, CancellationToken cancellationToken);
}

public sealed class ChangeStockStore(Database database) : IChangeStockStore
{
    public Task<IReadOnlyDictionary<long, int>> CountsAsync(CancellationToken cancellationToken) =>
        database.ReadAsync<IReadOnlyDictionary<long, int>>(async c =>
            (await c.QueryAsync<(long Amount, long Count)>(new CommandDefinition(
                "SELECT amount, COUNT(*) FROM change_stock GROUP BY amount", cancellationToken: cancellationToken)))
            .ToDictionary(r => r.Amount, r => (int)r.Count), cancellationToken);

    public Task AddAsync(DbConnection c, DbTransaction t, IReadOnlyList<StockedProof> proofs, DateTimeOffset now, CancellationToken cancellationToken) =>
        c.ExecuteAsync(new CommandDefinition(
            "INSERT INTO change_stock (secret, amount, keyset_id, c, dleq, created_at) VALUES (@Secret, @Amount, @KeysetId, @C, @Dleq, @now)",
            proofs.Select(p => new { p.Secret, p.Amount, p.KeysetId, p.C, p.Dleq, now = now.ToUnixTimeMilliseconds() }), t,
            cancellationToken: cancellationToken));

    public async Task<StockedProof?> TakeAsync(DbConnection c, DbTransaction t, long amount, CancellationToken cancellationToken)
    {
        using var take = database.Statement(c, t,
            $"""
            DELETE FROM change_stock
            WHERE amount = @amount AND secret = (SELECT secret FROM change_stock WHERE amount = @amount LIMIT 1{(database.Dialect == SqlDialect.Postgres ? " FOR UPDATE SKIP LOCKED" : "")})
            RETURNING secret, amount, keyset_id, c, dleq
            """);
        await using var reader = await take.Set("@amount", amount).ReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken)
            ? new StockedProof(reader.GetString(0), reader.GetInt64(1), reader.GetString(2), reader.GetString(3), reader.IsDBNull(4) ? null : reader.GetString(4))
            : null;
    }
}
