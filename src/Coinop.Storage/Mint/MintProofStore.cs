using System.Data.Common;
using Dapper;

namespace Coinop.Storage.Mint;

/// <summary>
/// The spent set, the pending locks and the issued signatures. Writes run inside the caller's transaction and
/// use <c>ON CONFLICT DO NOTHING</c>, returning how many rows went in: fewer than asked means some proof was
/// already spent or pending (or some output already signed), and the caller rolls the whole transaction back.
/// Under concurrency the primary key decides: of two transactions spending one Y, exactly one inserts it.
/// </summary>
public interface IMintProofStore
{
    /// <summary>Adds proofs as SPENT, or as PENDING for <paramref name="meltQuoteId"/>; returns the number inserted.</summary>
    Task<int> InsertProofsAsync(DbConnection c, DbTransaction t, IReadOnlyList<SpentProofRecord> proofs, bool pending, string? meltQuoteId,
        DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>PENDING → SPENT for the proofs a melt locked.</summary>
    Task<int> SettlePendingAsync(DbConnection c, DbTransaction t, string meltQuoteId, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>Deletes the PENDING locks of a melt whose payment failed (SPENT rows are never deleted).</summary>
    Task<int> ReleasePendingAsync(DbConnection c, DbTransaction t, string meltQuoteId, CancellationToken cancellationToken);

    /// <summary>The states of the given Ys that are pending or spent (absent ones are unspent).</summary>
    Task<IReadOnlyList<ProofStateRecord>> StatesAsync(IReadOnlyList<byte[]> ys, CancellationToken cancellationToken);

    Task<IReadOnlyList<ProofStateRecord>> StatesAsync(DbConnection c, DbTransaction? t, IReadOnlyList<byte[]> ys, CancellationToken cancellationToken);

    /// <summary>Records issued signatures; returns the number inserted (fewer means some B_ was already signed).</summary>
    Task<int> InsertSignaturesAsync(DbConnection c, DbTransaction t, IReadOnlyList<SignatureRecord> signatures, DateTimeOffset now,
        CancellationToken cancellationToken);

    /// <summary>The stored signatures for the given blinded messages (NUT-09 restore).</summary>
    Task<IReadOnlyList<SignatureRecord>> FindSignaturesAsync(IReadOnlyList<byte[]> blinded, CancellationToken cancellationToken);

    Task<IReadOnlyList<SignatureRecord>> FindSignaturesAsync(DbConnection c, DbTransaction? t, IReadOnlyList<byte[]> blinded, CancellationToken cancellationToken);

    /// <summary>Is the keyset active right now (read inside the signing transaction, so a rotation elsewhere is seen)?</summary>
    Task<bool> IsKeysetActiveAsync(DbConnection c, DbTransaction t, string keysetId, CancellationToken cancellationToken);
}

public sealed class MintProofStore(Database database) : IMintProofStore
{
    public async Task<int> InsertProofsAsync(DbConnection c, DbTransaction t, IReadOnlyList<SpentProofRecord> proofs, bool pending, string? meltQuoteId,
        DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (proofs.Count == 0)
        {
            return 0;
        }

        var state = pending ? "PENDING" : "SPENT";
        using var insert = database.Statement(c, t,
            """
            INSERT INTO mint_proofs (y, keyset_id, amount, secret, c, witness, state, melt_quote_id, updated_at)
            VALUES (@Y, @KeysetId, @Amount, @Secret, @C, @Witness, @State, @MeltQuoteId, @Now)
            ON CONFLICT (y) DO NOTHING
            """);
        var inserted = 0;
        foreach (var p in proofs)
        {
            inserted += await insert.Set("@Y", p.Y).Set("@KeysetId", p.KeysetId).Set("@Amount", StoredAmount.ToColumn(p.Amount)).Set("@Secret", p.Secret)
                .Set("@C", p.C).Set("@Witness", p.Witness).Set("@State", state).Set("@MeltQuoteId", meltQuoteId).Set("@Now", now.ToUnixTimeMilliseconds())
                .ExecuteAsync(cancellationToken);
        }

        return inserted;
    }

    public Task<int> SettlePendingAsync(DbConnection c, DbTransaction t, string meltQuoteId, DateTimeOffset now, CancellationToken cancellationToken) =>
        c.ExecuteAsync(new CommandDefinition(
            "UPDATE mint_proofs SET state = 'SPENT', updated_at = @now WHERE melt_quote_id = @meltQuoteId AND state = 'PENDING'",
            new { meltQuoteId, now = now.ToUnixTimeMilliseconds() }, t, cancellationToken: cancellationToken));

    public Task<int> ReleasePendingAsync(DbConnection c, DbTransaction t, string meltQuoteId, CancellationToken cancellationToken) =>
        c.ExecuteAsync(new CommandDefinition(
            "DELETE FROM mint_proofs WHERE melt_quote_id = @meltQuoteId AND state = 'PENDING'",
            new { meltQuoteId }, t, cancellationToken: cancellationToken));

    public Task<IReadOnlyList<ProofStateRecord>> StatesAsync(IReadOnlyList<byte[]> ys, CancellationToken cancellationToken) =>
        database.ReadAsync(c => StatesAsync(c, null, ys, cancellationToken), cancellationToken);

    public async Task<IReadOnlyList<ProofStateRecord>> StatesAsync(DbConnection c, DbTransaction? t, IReadOnlyList<byte[]> ys, CancellationToken cancellationToken)
    {
        if (ys.Count == 0)
        {
            return [];
        }

        var rows = await c.QueryAsync<StateRow>(new CommandDefinition(
            $"SELECT y AS Y, state AS State, witness AS Witness FROM mint_proofs WHERE y {InList("ys")}",
            new { ys }, t, cancellationToken: cancellationToken));
        return [.. rows.Select(r => new ProofStateRecord(r.Y, r.State, r.Witness))];
    }

    public async Task<int> InsertSignaturesAsync(DbConnection c, DbTransaction t, IReadOnlyList<SignatureRecord> signatures, DateTimeOffset now,
        CancellationToken cancellationToken)
    {
        if (signatures.Count == 0)
        {
            return 0;
        }

        return await c.ExecuteAsync(new CommandDefinition(
            """
            INSERT INTO mint_signatures (b, keyset_id, amount, c, dleq_e, dleq_s, created_at)
            VALUES (@B, @KeysetId, @Amount, @C, @DleqE, @DleqS, @Now)
            ON CONFLICT (b) DO NOTHING
            """,
            signatures.Select(s => new
            {
                s.B,
                s.KeysetId,
                Amount = StoredAmount.ToColumn(s.Amount),
                s.C,
                s.DleqE,
                s.DleqS,
                Now = now.ToUnixTimeMilliseconds(),
            }), t, cancellationToken: cancellationToken));
    }

    public Task<IReadOnlyList<SignatureRecord>> FindSignaturesAsync(IReadOnlyList<byte[]> blinded, CancellationToken cancellationToken) =>
        database.ReadAsync(c => FindSignaturesAsync(c, null, blinded, cancellationToken), cancellationToken);

    public async Task<IReadOnlyList<SignatureRecord>> FindSignaturesAsync(DbConnection c, DbTransaction? t, IReadOnlyList<byte[]> blinded,
        CancellationToken cancellationToken)
    {
        if (blinded.Count == 0)
        {
            return [];
        }

        var rows = await c.QueryAsync<SignatureRow>(new CommandDefinition(
            $"SELECT b AS B, keyset_id AS KeysetId, amount AS Amount, c AS C, dleq_e AS DleqE, dleq_s AS DleqS FROM mint_signatures WHERE b {InList("blinded")}",
            new { blinded }, t, cancellationToken: cancellationToken));
        return [.. rows.Select(r => new SignatureRecord(r.B, r.KeysetId, StoredAmount.FromColumn(r.Amount), r.C, r.DleqE, r.DleqS))];
    }

    public async Task<bool> IsKeysetActiveAsync(DbConnection c, DbTransaction t, string keysetId, CancellationToken cancellationToken) =>
        await c.ExecuteScalarAsync<long?>(new CommandDefinition(
            "SELECT active FROM mint_keysets WHERE id = @keysetId", new { keysetId }, t, cancellationToken: cancellationToken)) == 1;

    /// <summary>Dapper expands a list parameter for SQLite; Npgsql takes it as one array parameter instead.</summary>
    private string InList(string parameter) => database.Dialect == SqlDialect.Postgres ? $"= ANY(@{parameter})" : $"IN @{parameter}";

    private sealed class StateRow
    {
        public byte[] Y { get; set; } = [];
        public string State { get; set; } = "";
        public string? Witness { get; set; }
    }

    private sealed class SignatureRow
    {
        public byte[] B { get; set; } = [];
        public string KeysetId { get; set; } = "";
        public long Amount { get; set; }
        public string C { get; set; } = "";
        public string DleqE { get; set; } = "";
        public string DleqS { get; set; } = "";
    }
}
