using Dapper;

namespace Coinop.Storage.Mint;

/// <summary>The mint's master seed and its keysets (which one signs new outputs, and their fees).</summary>
public interface IMintKeysetStore
{
    /// <summary>Returns the stored seed, storing <paramref name="candidate"/> first when there is none (the first node wins).</summary>
    Task<byte[]> GetOrCreateSeedAsync(byte[] candidate, CancellationToken cancellationToken);

    Task<IReadOnlyList<MintKeysetRecord>> ListAsync(CancellationToken cancellationToken);

    Task<MintKeysetRecord?> FindAsync(string id, CancellationToken cancellationToken);

    /// <summary>The active keyset of <paramref name="unit"/>, creating the first one (index 0) when the unit has none.</summary>
    Task<MintKeysetRecord> EnsureActiveAsync(string unit, Func<long, MintKeysetRecord> create, CancellationToken cancellationToken);

    /// <summary>Deactivates the unit's active keyset and activates a new one at the next derivation index, atomically.</summary>
    Task<MintKeysetRecord> RotateAsync(string unit, Func<long, MintKeysetRecord> create, CancellationToken cancellationToken);
}

public sealed class MintKeysetStore(Database database) : IMintKeysetStore
{
    private const string Columns =
        "id AS Id, unit AS Unit, derivation_index AS DerivationIndex, input_fee_ppk AS InputFeePpk, max_order AS MaxOrder, active AS Active, created_at AS CreatedAt";

    public Task<byte[]> GetOrCreateSeedAsync(byte[] candidate, CancellationToken cancellationToken) =>
        database.WriteAsync(async (c, t) =>
        {
            await c.ExecuteAsync(new CommandDefinition(
                "INSERT INTO mint_seed (id, seed) VALUES (1, @candidate) ON CONFLICT (id) DO NOTHING",
                new { candidate }, t, cancellationToken: cancellationToken));
            return await c.ExecuteScalarAsync<byte[]>(new CommandDefinition(
                "SELECT seed FROM mint_seed WHERE id = 1", transaction: t, cancellationToken: cancellationToken)) ?? candidate;
        }, cancellationToken);

    public Task<IReadOnlyList<MintKeysetRecord>> ListAsync(CancellationToken cancellationToken) =>
        database.ReadAsync<IReadOnlyList<MintKeysetRecord>>(async c =>
        {
            var rows = await c.QueryAsync<Row>(new CommandDefinition(
                $"SELECT {Columns} FROM mint_keysets ORDER BY derivation_index", cancellationToken: cancellationToken));
            return [.. rows.Select(r => r.ToRecord())];
        }, cancellationToken);

    public Task<MintKeysetRecord?> FindAsync(string id, CancellationToken cancellationToken) =>
        database.ReadAsync(async c =>
        {
            var row = await c.QuerySingleOrDefaultAsync<Row>(new CommandDefinition(
                $"SELECT {Columns} FROM mint_keysets WHERE id = @id", new { id }, cancellationToken: cancellationToken));
            return row?.ToRecord();
        }, cancellationToken);

    public async Task<MintKeysetRecord> EnsureActiveAsync(string unit, Func<long, MintKeysetRecord> create, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                return await database.WriteAsync(async (c, t) =>
                {
                    var active = await c.QuerySingleOrDefaultAsync<Row>(new CommandDefinition(
                        $"SELECT {Columns} FROM mint_keysets WHERE unit = @unit AND active = 1", new { unit }, t, cancellationToken: cancellationToken));
                    if (active is not null)
                    {
                        return active.ToRecord();
                    }

                    return await InsertNextAsync(c, t, create, cancellationToken);
                }, cancellationToken);
            }
            catch (Exception ex) when (attempt < 3 && Database.IsUniqueViolation(ex))
            {
                // Another node created the keyset at the same moment: read theirs.
            }
        }
    }

    public Task<MintKeysetRecord> RotateAsync(string unit, Func<long, MintKeysetRecord> create, CancellationToken cancellationToken) =>
        database.WriteAsync(async (c, t) =>
        {
            await c.ExecuteAsync(new CommandDefinition(
                "UPDATE mint_keysets SET active = 0 WHERE unit = @unit AND active = 1", new { unit }, t, cancellationToken: cancellationToken));
            return await InsertNextAsync(c, t, create, cancellationToken);
        }, cancellationToken);

    private static async Task<MintKeysetRecord> InsertNextAsync(System.Data.Common.DbConnection c, System.Data.Common.DbTransaction t,
        Func<long, MintKeysetRecord> create, CancellationToken cancellationToken)
    {
        var next = await c.ExecuteScalarAsync<long>(new CommandDefinition(
            "SELECT COALESCE(MAX(derivation_index), -1) + 1 FROM mint_keysets", transaction: t, cancellationToken: cancellationToken));
        var record = create(next) with { DerivationIndex = next, Active = true };
        await c.ExecuteAsync(new CommandDefinition(
            """
            INSERT INTO mint_keysets (id, unit, derivation_index, input_fee_ppk, max_order, active, created_at)
            VALUES (@Id, @Unit, @DerivationIndex, @InputFeePpk, @MaxOrder, 1, @CreatedAt)
            """,
            new
            {
                record.Id,
                record.Unit,
                record.DerivationIndex,
                InputFeePpk = StoredAmount.ToColumn(record.InputFeePpk),
                record.MaxOrder,
                CreatedAt = record.CreatedAt.ToUnixTimeMilliseconds(),
            }, t, cancellationToken: cancellationToken));
        return record;
    }

    private sealed class Row
    {
        public string Id { get; set; } = "";
        public string Unit { get; set; } = "";
        public long DerivationIndex { get; set; }
        public long InputFeePpk { get; set; }
        public long MaxOrder { get; set; }
        public long Active { get; set; }
        public long CreatedAt { get; set; }

        public MintKeysetRecord ToRecord() => new(Id, Unit, DerivationIndex, StoredAmount.FromColumn(InputFeePpk), (int)MaxOrder, Active != 0,
            DateTimeOffset.FromUnixTimeMilliseconds(CreatedAt));
    }
}
