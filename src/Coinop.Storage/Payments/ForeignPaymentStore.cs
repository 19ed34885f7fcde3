using System.Data.Common;
using Dapper;

namespace Coinop.Storage.Payments;

public static class ForeignPaymentState
{
    public const string Pending = "PENDING";
    public const string Credited = "CREDITED";
    public const string Failed = "FAILED";
}

/// <summary>
/// A token of another accepted mint being redeemed: the token, and the blinded outputs (with their secrets and
/// blinding factors, as JSON) the market asked that mint to sign in exchange. Stored before the swap.
/// </summary>
public sealed record ForeignPaymentRecord(
    string TokenKey,
    string Mint,
    string Token,
    long AmountSat,
    string Outputs,
    string NodeId,
    string State,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    long? CreditedMsat = null);

/// <summary>A proof of another mint the market now owns.</summary>
public sealed record ForeignProofRecord(string Secret, string Mint, string KeysetId, long Amount, string C, string TokenKey);

/// <summary>
/// Redemptions of other mints' tokens. PENDING → CREDITED (with the fresh proofs and the ledger credit, in one
/// transaction) or → FAILED; conditional updates make each happen once. A FAILED redemption may be tried again.
/// </summary>
public interface IForeignPaymentStore
{
    /// <summary>Starts a redemption (or restarts a FAILED one); false when the token is already PENDING or CREDITED.</summary>
    Task<bool> TryStartAsync(ForeignPaymentRecord payment, CancellationToken cancellationToken);

    Task<ForeignPaymentRecord?> FindAsync(string tokenKey, CancellationToken cancellationToken);

    /// <summary>PENDING → CREDITED with the proofs received, inside the transaction that credits the ledger.</summary>
    Task<bool> TryCreditAsync(DbConnection c, DbTransaction t, string tokenKey, IReadOnlyList<ForeignProofRecord> proofs, long creditedMsat,
        DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>PENDING → FAILED (the mint refused, or never signed our outputs).</summary>
    Task<bool> TryFailAsync(string tokenKey, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>The PENDING redemptions of a node, last touched before <paramref name="updatedBefore"/>.</summary>
    Task<IReadOnlyList<ForeignPaymentRecord>> PendingAsync(string nodeId, DateTimeOffset updatedBefore, CancellationToken cancellationToken);

    /// <summary>The market nodes that have PENDING redemptions.</summary>
    Task<IReadOnlyList<string>> NodesPendingAsync(CancellationToken cancellationToken);

    /// <summary>
    /// The market's ungiven proofs of <paramref name="mint"/> worth at most <paramref name="maxAmount"/> each, largest
    /// first: only those a token's redemption brought (<paramref name="tokenKey"/>), or any (at most <paramref name="limit"/>).
    /// </summary>
    Task<IReadOnlyList<ForeignProofRecord>> StockAsync(DbConnection c, DbTransaction t, string mint, string? tokenKey, long maxAmount, int limit,
        CancellationToken cancellationToken);

    /// <summary>Marks proofs handed out for <paramref name="givenFor"/>; false (nothing to trust) unless every one was still ungiven.</summary>
    Task<bool> GiveAsync(DbConnection c, DbTransaction t, IReadOnlyList<string> secrets, string givenFor, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>The mint whose ecash a balance holds, when it is another accepted mint's (null: ours).</summary>
    Task<string?> BalanceMintAsync(DbConnection c, DbTransaction? t, string account, CancellationToken cancellationToken);

    /// <summary>Records the mint of a balance funded by another mint's ecash (kept if already recorded).</summary>
    Task SetBalanceMintAsync(DbConnection c, DbTransaction t, string account, string mint, CancellationToken cancellationToken);

    Task<string?> BalanceMintAsync(string account, CancellationToken cancellationToken);
}

public sealed class ForeignPaymentStore(Database database) : IForeignPaymentStore
{
    private const string Columns =
        "token_key AS TokenKey, mint AS Mint, token AS Token, amount_sat AS AmountSat, outputs AS Outputs, node_id AS NodeId, state AS State, " +
        "created_at AS CreatedAt, updated_at AS UpdatedAt, credited_msat AS CreditedMsat";

    public Task<bool> TryStartAsync(ForeignPaymentRecord p, CancellationToken cancellationToken) =>
        database.WriteAsync(async (c, t) => await c.ExecuteAsync(new CommandDefinition(
            """
            INSERT INTO foreign_payments (token_key, mint, token, amount_sat, outputs, node_id, state, created_at, updated_at)
            VALUES (@TokenKey, @Mint, @Token, @AmountSat, @Outputs, @NodeId, 'PENDING', @CreatedAt, @UpdatedAt)
            ON CONFLICT (token_key) DO UPDATE SET outputs = excluded.outputs, node_id = excluded.node_id, state = 'PENDING', updated_at = excluded.updated_at
            WHERE foreign_payments.state = 'FAILED'
            """,
            new
            {
                p.TokenKey,
                p.Mint,
                p.Token,
                p.AmountSat,
                p.Outputs,
                p.NodeId,
                CreatedAt = p.CreatedAt.ToUnixTimeMilliseconds(),
                UpdatedAt = p.UpdatedAt.ToUnixTimeMilliseconds(),
            }, t, cancellationToken: cancellationToken)) == 1, cancellationToken);

    public Task<ForeignPaymentRecord?> FindAsync(string tokenKey, CancellationToken cancellationToken) =>
        database.ReadAsync(async c => (await c.QuerySingleOrDefaultAsync<Row>(new CommandDefinition(
            $"SELECT {Columns} FROM foreign_payments WHERE token_key = @tokenKey", new { tokenKey }, cancellationToken: cancellationToken)))?.ToRecord(),
            cancellationToken);

    public async Task<bool> TryCreditAsync(DbConnection c, DbTransaction t, string tokenKey, IReadOnlyList<ForeignProofRecord> proofs, long creditedMsat,
        DateTimeOffset now, CancellationToken cancellationToken)
    {
        var updated = await c.ExecuteAsync(new CommandDefinition(
            "UPDATE foreign_payments SET state = 'CREDITED', credited_msat = @creditedMsat, updated_at = @now WHERE token_key = @tokenKey AND state = 'PENDING'",
            new { tokenKey, creditedMsat, now = now.ToUnixTimeMilliseconds() }, t, cancellationToken: cancellationToken));
        if (updated != 1)
        {
            return false;
        }

        await c.ExecuteAsync(new CommandDefinition(
            """
            INSERT INTO foreign_proofs (secret, mint, keyset_id, amount, c, token_key, created_at)
            VALUES (@Secret, @Mint, @KeysetId, @Amount, @C, @TokenKey, @now)
            """,
            proofs.Select(p => new { p.Secret, p.Mint, p.KeysetId, p.Amount, p.C, p.TokenKey, now = now.ToUnixTimeMilliseconds() }),
            t, cancellationToken: cancellationToken));
        return true;
    }

    public Task<bool> TryFailAsync(string tokenKey, DateTimeOffset now, CancellationToken cancellationToken) =>
        database.WriteAsync(async (c, t) => await c.ExecuteAsync(new CommandDefinition(
            "UPDATE foreign_payments SET state = 'FAILED', updated_at = @now WHERE token_key = @tokenKey AND state = 'PENDING'",
            new { tokenKey, now = now.ToUnixTimeMilliseconds() }, t, cancellationToken: cancellationToken)) == 1, cancellationToken);

    public Task<IReadOnlyList<string>> NodesPendingAsync(CancellationToken cancellationToken) =>
        database.ReadAsync<IReadOnlyList<string>>(async c => [.. await c.QueryAsync<string>(new CommandDefinition(
            "SELECT DISTINCT node_id FROM foreign_payments WHERE state = 'PENDING'", cancellationToken: cancellationToken))], cancellationToken);

    public Task<IReadOnlyList<ForeignPaymentRecord>> PendingAsync(string nodeId, DateTimeOffset updatedBefore, CancellationToken cancellationToken) =>
        database.ReadAsync<IReadOnlyList<ForeignPaymentRecord>>(async c =>
        {
            var rows = await c.QueryAsync<Row>(new CommandDefinition(
                $"SELECT {Columns} FROM foreign_payments WHERE node_id = @nodeId AND state = 'PENDING' AND updated_at < @before",
                new { nodeId, before = updatedBefore.ToUnixTimeMilliseconds() }, cancellationToken: cancellationToken));
            return [.. rows.Select(r => r.ToRecord())];
        }, cancellationToken);

    public async Task<IReadOnlyList<ForeignProofRecord>> StockAsync(DbConnection c, DbTransaction t, string mint, string? tokenKey, long maxAmount, int limit,
        CancellationToken cancellationToken) =>
        [.. await c.QueryAsync<ForeignProofRecord>(new CommandDefinition(
            $"""
            SELECT secret AS Secret, mint AS Mint, keyset_id AS KeysetId, amount AS Amount, c AS C, token_key AS TokenKey FROM foreign_proofs
            WHERE {(tokenKey is null ? "mint = @mint" : "token_key = @tokenKey")} AND given_for IS NULL AND amount <= @maxAmount
            ORDER BY amount DESC, secret LIMIT @limit
            """,
            new { mint, tokenKey, maxAmount, limit }, t, cancellationToken: cancellationToken))];

    public async Task<bool> GiveAsync(DbConnection c, DbTransaction t, IReadOnlyList<string> secrets, string givenFor, DateTimeOffset now,
        CancellationToken cancellationToken)
    {
        var given = 0;
        foreach (var secret in secrets)
        {
            given += await c.ExecuteAsync(new CommandDefinition(
                "UPDATE foreign_proofs SET given_for = @givenFor, given_at = @now WHERE secret = @secret AND given_for IS NULL",
                new { secret, givenFor, now = now.ToUnixTimeMilliseconds() }, t, cancellationToken: cancellationToken));
        }

        return given == secrets.Count;
    }

    public Task<string?> BalanceMintAsync(DbConnection c, DbTransaction? t, string account, CancellationToken cancellationToken) =>
        c.QuerySingleOrDefaultAsync<string?>(new CommandDefinition("SELECT mint FROM balance_mints WHERE account = @account", new { account }, t,
            cancellationToken: cancellationToken));

    public Task<string?> BalanceMintAsync(string account, CancellationToken cancellationToken) =>
        database.ReadAsync(c => BalanceMintAsync(c, null, account, cancellationToken), cancellationToken);

    public Task SetBalanceMintAsync(DbConnection c, DbTransaction t, string account, string mint, CancellationToken cancellationToken) =>
        c.ExecuteAsync(new CommandDefinition("INSERT INTO balance_mints (account, mint) VALUES (@account, @mint) ON CONFLICT (account) DO NOTHING",
            new { account, mint }, t, cancellationToken: cancellationToken));

    private sealed class Row
    {
        public string TokenKey { get; set; } = "";
        public string Mint { get; set; } = "";
        public string Token { get; set; } = "";
        public long AmountSat { get; set; }
        public string Outputs { get; set; } = "";
        public string NodeId { get; set; } = "";
        public string State { get; set; } = "";
        public long CreatedAt { get; set; }
        public long UpdatedAt { get; set; }
        public long? CreditedMsat { get; set; }

        public ForeignPaymentRecord ToRecord() => new(TokenKey, Mint, Token, AmountSat, Outputs, NodeId, State,
            DateTimeOffset.FromUnixTimeMilliseconds(CreatedAt), DateTimeOffset.FromUnixTimeMilliseconds(UpdatedAt), CreditedMsat);
    }
}
