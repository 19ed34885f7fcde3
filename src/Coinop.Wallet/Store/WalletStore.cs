using System.Text.Json;
using Coinop.Ecash;
using Dapper;
using Microsoft.Data.Sqlite;

namespace Coinop.Wallet.Store;

/// <summary>Proof states in the wallet: UNSPENT (spendable), RESERVED (in a token we sent, not yet claimed), SPENT.</summary>
public static class WalletProofState
{
    public const string Unspent = "UNSPENT";
    public const string Reserved = "RESERVED";
    public const string Spent = "SPENT";
}

/// <summary>A proof the wallet holds, with the mint it belongs to.</summary>
public sealed record StoredProof(string Mint, Proof Proof, string State);

/// <summary>One line of the wallet's history.</summary>
public sealed record HistoryEntry(long Id, DateTimeOffset At, string Kind, string Mint, ulong Amount, ulong Fee, string? Token, string? Note);

/// <summary>Outputs sent to a mint whose answer has not been stored yet (recovered with NUT-09 restore after a crash).</summary>
public sealed record PendingOperation(long Id, string Mint, string Kind, string OutputsJson, IReadOnlyList<string> InputSecrets);

/// <summary>
/// The wallet's SQLite file (<c>&lt;data&gt;/wallet.db</c>): proofs, history, and the outputs of requests in flight so
/// that a crash between the mint's answer and our write loses nothing (they are restored from the mint).
/// </summary>
public sealed class WalletStore
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.General);
    private readonly string _connectionString;

    private WalletStore(string path)
    {
        _connectionString = new SqliteConnectionStringBuilder { DataSource = path, Mode = SqliteOpenMode.ReadWriteCreate, Pooling = true, DefaultTimeout = 30 }.ToString();
    }

    public static async Task<WalletStore> OpenAsync(string dataDir, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(dataDir);
        var store = new WalletStore(Path.Combine(Path.GetFullPath(dataDir), "wallet.db"));
        await using var c = await store.ConnectAsync(cancellationToken);
        await c.ExecuteAsync(new CommandDefinition(
            """
            PRAGMA journal_mode=WAL;
            CREATE TABLE IF NOT EXISTS proofs (
                secret      TEXT PRIMARY KEY,
                mint        TEXT NOT NULL,
                keyset_id   TEXT NOT NULL,
                amount      INTEGER NOT NULL,
                c           TEXT NOT NULL,
                dleq        TEXT NULL,
                state       TEXT NOT NULL,
                created_at  INTEGER NOT NULL,
                reserved_by INTEGER NULL
            );
            CREATE INDEX IF NOT EXISTS proofs_by_mint ON proofs (mint, state);
            CREATE TABLE IF NOT EXISTS history (
                id          INTEGER PRIMARY KEY AUTOINCREMENT,
                at          INTEGER NOT NULL,
                kind        TEXT NOT NULL,
                mint        TEXT NOT NULL,
                amount      INTEGER NOT NULL,
                fee         INTEGER NOT NULL,
                token       TEXT NULL,
                note        TEXT NULL
            );
            CREATE TABLE IF NOT EXISTS pending_operations (
                id          INTEGER PRIMARY KEY AUTOINCREMENT,
                mint        TEXT NOT NULL,
                kind        TEXT NOT NULL,
                outputs     TEXT NOT NULL,
                inputs      TEXT NOT NULL,
                created_at  INTEGER NOT NULL
            );
            """, cancellationToken: cancellationToken));
        return store;
    }

    public async Task<IReadOnlyList<StoredProof>> ProofsAsync(string? mint, string state, CancellationToken cancellationToken)
    {
        await using var c = await ConnectAsync(cancellationToken);
        var rows = await c.QueryAsync<Row>(new CommandDefinition(
            "SELECT secret AS Secret, mint AS Mint, keyset_id AS KeysetId, amount AS Amount, c AS C, dleq AS Dleq, state AS State FROM proofs " +
            "WHERE state = @state AND (@mint IS NULL OR mint = @mint) ORDER BY amount DESC",
            new { state, mint }, cancellationToken: cancellationToken));
        return [.. rows.Select(r => r.ToStored())];
    }

    /// <summary>Records a request's outputs before it is sent; returns the operation id.</summary>
    public async Task<long> BeginOperationAsync(string mint, string kind, string outputsJson, IReadOnlyList<string> inputSecrets, DateTimeOffset now,
        CancellationToken cancellationToken)
    {
        await using var c = await ConnectAsync(cancellationToken);
        return await c.ExecuteScalarAsync<long>(new CommandDefinition(
            "INSERT INTO pending_operations (mint, kind, outputs, inputs, created_at) VALUES (@mint, @kind, @outputsJson, @inputs, @now) RETURNING id",
            new { mint, kind, outputsJson, inputs = JsonSerializer.Serialize(inputSecrets, Json), now = now.ToUnixTimeMilliseconds() },
            cancellationToken: cancellationToken));
    }

    public async Task<IReadOnlyList<PendingOperation>> PendingOperationsAsync(CancellationToken cancellationToken)
    {
        await using var c = await ConnectAsync(cancellationToken);
        var rows = await c.QueryAsync<(long Id, string Mint, string Kind, string Outputs, string Inputs)>(new CommandDefinition(
            "SELECT id, mint, kind, outputs, inputs FROM pending_operations ORDER BY id", cancellationToken: cancellationToken));
        return [.. rows.Select(r => new PendingOperation(r.Id, r.Mint, r.Kind, r.Outputs, JsonSerializer.Deserialize<List<string>>(r.Inputs, Json) ?? []))];
    }

    /// <summary>
    /// Completes an operation in one transaction: new proofs in (state as given), spent inputs marked, the pending
    /// record removed and a history line written. Returns the history id.
    /// </summary>
    public async Task<long> CompleteAsync(long? operationId, string mint, IReadOnlyList<Proof> newProofs, string newState, IReadOnlyList<string> spentSecrets,
        HistoryEntry? history, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await using var c = await ConnectAsync(cancellationToken);
        await using var t = await c.BeginTransactionAsync(cancellationToken);
        long historyId = 0;
        if (history is not null)
        {
            historyId = await c.ExecuteScalarAsync<long>(new CommandDefinition(
                "INSERT INTO history (at, kind, mint, amount, fee, token, note) VALUES (@at, @Kind, @Mint, @amount, @fee, @Token, @Note) RETURNING id",
                new
                {
                    at = now.ToUnixTimeMilliseconds(),
                    history.Kind,
                    history.Mint,
                    amount = unchecked((long)history.Amount),
                    fee = unchecked((long)history.Fee),
                    history.Token,
                    history.Note,
                }, t, cancellationToken: cancellationToken));
        }

        await c.ExecuteAsync(new CommandDefinition(
            """
            INSERT INTO proofs (secret, mint, keyset_id, amount, c, dleq, state, created_at, reserved_by)
            VALUES (@Secret, @Mint, @Id, @Amount, @C, @Dleq, @State, @Now, @ReservedBy)
            ON CONFLICT (secret) DO NOTHING
            """,
            newProofs.Select(p => new
            {
                p.Secret,
                Mint = mint,
                p.Id,
                Amount = unchecked((long)p.Amount),
                p.C,
                Dleq = p.Dleq is null ? null : JsonSerializer.Serialize(p.Dleq, Json),
                State = newState,
                Now = now.ToUnixTimeMilliseconds(),
                ReservedBy = newState == WalletProofState.Reserved ? historyId : (long?)null,
            }), t, cancellationToken: cancellationToken));
        await c.ExecuteAsync(new CommandDefinition(
            "UPDATE proofs SET state = 'SPENT' WHERE secret = @secret", spentSecrets.Select(s => new { secret = s }), t, cancellationToken: cancellationToken));
        if (operationId is { } id)
        {
            await c.ExecuteAsync(new CommandDefinition("DELETE FROM pending_operations WHERE id = @id", new { id }, t, cancellationToken: cancellationToken));
        }

        await t.CommitAsync(cancellationToken);
        return historyId;
    }

    /// <summary>Marks our own proofs as in a sent token (reserved), and writes the send to history, atomically.</summary>
    public async Task<long> ReserveAsync(IReadOnlyList<string> secrets, HistoryEntry history, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await using var c = await ConnectAsync(cancellationToken);
        await using var t = await c.BeginTransactionAsync(cancellationToken);
        var historyId = await c.ExecuteScalarAsync<long>(new CommandDefinition(
            "INSERT INTO history (at, kind, mint, amount, fee, token, note) VALUES (@at, @Kind, @Mint, @amount, @fee, @Token, @Note) RETURNING id",
            new { at = now.ToUnixTimeMilliseconds(), history.Kind, history.Mint, amount = unchecked((long)history.Amount), fee = unchecked((long)history.Fee), history.Token, history.Note },
            t, cancellationToken: cancellationToken));
        var updated = await c.ExecuteAsync(new CommandDefinition(
            "UPDATE proofs SET state = 'RESERVED', reserved_by = @historyId WHERE secret = @secret AND state = 'UNSPENT'",
            secrets.Select(s => new { secret = s, historyId }), t, cancellationToken: cancellationToken));
        if (updated != secrets.Count)
        {
            throw new InvalidOperationException("some proofs were used by another wallet process at the same time; try again");
        }

        await t.CommitAsync(cancellationToken);
        return historyId;
    }

    public async Task<IReadOnlyList<HistoryEntry>> HistoryAsync(int limit, CancellationToken cancellationToken)
    {
        await using var c = await ConnectAsync(cancellationToken);
        var rows = await c.QueryAsync<(long Id, long At, string Kind, string Mint, long Amount, long Fee, string? Token, string? Note)>(new CommandDefinition(
            "SELECT id, at, kind, mint, amount, fee, token, note FROM history ORDER BY id DESC LIMIT @limit", new { limit }, cancellationToken: cancellationToken));
        return [.. rows.Select(r => new HistoryEntry(r.Id, DateTimeOffset.FromUnixTimeMilliseconds(r.At), r.Kind, r.Mint, unchecked((ulong)r.Amount),
            unchecked((ulong)r.Fee), r.Token, r.Note))];
    }

    /// <summary>Forgets an operation the mint refused (it signed nothing, so there is nothing to restore).</summary>
    public async Task AbandonOperationAsync(long operationId, CancellationToken cancellationToken)
    {
        await using var c = await ConnectAsync(cancellationToken);
        await c.ExecuteAsync(new CommandDefinition("DELETE FROM pending_operations WHERE id = @operationId", new { operationId }, cancellationToken: cancellationToken));
    }

    public async Task MarkSpentAsync(IReadOnlyList<string> secrets, CancellationToken cancellationToken)
    {
        await using var c = await ConnectAsync(cancellationToken);
        await c.ExecuteAsync(new CommandDefinition(
            "UPDATE proofs SET state = 'SPENT' WHERE secret = @secret", secrets.Select(s => new { secret = s }), cancellationToken: cancellationToken));
    }

    private async Task<SqliteConnection> ConnectAsync(CancellationToken cancellationToken)
    {
        var c = new SqliteConnection(_connectionString);
        await c.OpenAsync(cancellationToken);
        await c.ExecuteAsync(new CommandDefinition("PRAGMA busy_timeout=30000; PRAGMA synchronous=NORMAL;", cancellationToken: cancellationToken));
        return c;
    }

    private sealed class Row
    {
        public string Secret { get; set; } = "";
        public string Mint { get; set; } = "";
        public string KeysetId { get; set; } = "";
        public long Amount { get; set; }
        public string C { get; set; } = "";
        public string? Dleq { get; set; }
        public string State { get; set; } = "";

        public StoredProof ToStored() => new(Mint, new Proof
        {
            Amount = unchecked((ulong)Amount),
            Id = KeysetId,
            Secret = Secret,
            C = C,
            Dleq = Dleq is null ? null : JsonSerializer.Deserialize<DleqProof>(Dleq, Json),
        }, State);
    }
}
