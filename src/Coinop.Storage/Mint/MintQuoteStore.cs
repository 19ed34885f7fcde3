using System.Data.Common;
using Dapper;

namespace Coinop.Storage.Mint;

/// <summary>
/// Mint and melt quotes. State changes are conditional updates (they succeed only from the expected state), so
/// a quote is issued once and a melt runs once even when requests race across market nodes. The methods taking a
/// connection and transaction run inside the caller's transaction, together with the proofs and signatures.
/// </summary>
public interface IMintQuoteStore
{
    Task InsertMintQuoteAsync(MintQuoteRecord quote, CancellationToken cancellationToken);

    Task<MintQuoteRecord?> FindMintQuoteAsync(string id, CancellationToken cancellationToken);

    /// <summary>UNPAID → PAID; false when the quote was not UNPAID.</summary>
    Task<bool> MarkMintQuotePaidAsync(string id, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>UNPAID → PAID inside the caller's transaction (an internal melt paid its invoice); false when it was not UNPAID.</summary>
    Task<bool> MarkMintQuotePaidAsync(DbConnection c, DbTransaction t, string id, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>UNPAID → PAID for the quote whose invoice has this payment hash (the node said it was paid).</summary>
    Task<bool> MarkMintQuotePaidByHashAsync(string paymentHash, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>The mint quote whose invoice has this payment hash (an invoice this mint issued), or null.</summary>
    Task<MintQuoteRecord?> FindMintQuoteByPaymentHashAsync(string paymentHash, CancellationToken cancellationToken);

    /// <summary>
    /// Ecash outstanding against Lightning, in sat: mint quotes paid or issued, and unpaid ones still open, less what
    /// PAID melts took out (amount and routing fee).
    /// </summary>
    Task<ulong> OutstandingSatAsync(DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>True when a melt has PAID an invoice with this payment hash.</summary>
    Task<bool> IsPaymentHashPaidAsync(string paymentHash, CancellationToken cancellationToken);

    /// <summary>PAID → ISSUED inside the transaction that records the signatures; false when the quote was not PAID.</summary>
    Task<bool> TryIssueMintQuoteAsync(DbConnection c, DbTransaction t, string id, DateTimeOffset now, CancellationToken cancellationToken);

    Task InsertMeltQuoteAsync(MeltQuoteRecord quote, CancellationToken cancellationToken);

    Task<MeltQuoteRecord?> FindMeltQuoteAsync(string id, CancellationToken cancellationToken);

    /// <summary>UNPAID → PENDING, remembering what was paid in and the blank outputs for change.</summary>
    Task<bool> TryStartMeltAsync(DbConnection c, DbTransaction t, string id, ulong inputAmount, ulong inputFee, string? changeOutputs,
        DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>PENDING → PAID with the payment's fee, preimage and the change signatures (JSON).</summary>
    Task<bool> CompleteMeltAsync(DbConnection c, DbTransaction t, string id, ulong feePaid, string? preimage, string? change,
        DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>PENDING → UNPAID after a failed payment.</summary>
    Task<bool> ResetMeltAsync(DbConnection c, DbTransaction t, string id, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>Melts left PENDING since before <paramref name="updatedBefore"/> (a node died mid-payment).</summary>
    Task<IReadOnlyList<MeltQuoteRecord>> ListPendingMeltsAsync(DateTimeOffset updatedBefore, CancellationToken cancellationToken);
}

public sealed class MintQuoteStore(Database database) : IMintQuoteStore
{
    private const string MintColumns =
        "id AS Id, method AS Method, request AS Request, payment_hash AS PaymentHash, amount AS Amount, unit AS Unit, state AS State, " +
        "created_at AS CreatedAt, expires_at AS ExpiresAt, paid_at AS PaidAt, issued_at AS IssuedAt, pubkey AS Pubkey";

    private const string MeltColumns =
        "id AS Id, method AS Method, request AS Request, payment_hash AS PaymentHash, amount AS Amount, fee_reserve AS FeeReserve, unit AS Unit, " +
        "state AS State, created_at AS CreatedAt, expires_at AS ExpiresAt, updated_at AS UpdatedAt, input_amount AS InputAmount, " +
        "input_fee AS InputFee, change_outputs AS ChangeOutputs, fee_paid AS FeePaid, payment_preimage AS PaymentPreimage, change AS Change";

    public Task InsertMintQuoteAsync(MintQuoteRecord q, CancellationToken cancellationToken) =>
        database.WriteAsync((c, t) => c.ExecuteAsync(new CommandDefinition(
            """
            INSERT INTO mint_quotes (id, method, request, payment_hash, amount, unit, state, created_at, expires_at, pubkey)
            VALUES (@Id, @Method, @Request, @PaymentHash, @Amount, @Unit, @State, @CreatedAt, @ExpiresAt, @Pubkey)
            """,
            new
            {
                q.Id,
                q.Method,
                q.Request,
                q.PaymentHash,
                Amount = StoredAmount.ToColumn(q.Amount),
                q.Unit,
                q.State,
                CreatedAt = q.CreatedAt.ToUnixTimeMilliseconds(),
                ExpiresAt = q.ExpiresAt.ToUnixTimeMilliseconds(),
                q.Pubkey,
            }, t, cancellationToken: cancellationToken)), cancellationToken);

    public Task<MintQuoteRecord?> FindMintQuoteAsync(string id, CancellationToken cancellationToken) =>
        database.ReadAsync(async c => (await c.QuerySingleOrDefaultAsync<MintRow>(new CommandDefinition(
            $"SELECT {MintColumns} FROM mint_quotes WHERE id = @id", new { id }, cancellationToken: cancellationToken)))?.ToRecord(), cancellationToken);

    public Task<bool> MarkMintQuotePaidAsync(string id, DateTimeOffset now, CancellationToken cancellationToken) =>
        database.WriteAsync(async (c, t) => await c.ExecuteAsync(new CommandDefinition(
            "UPDATE mint_quotes SET state = 'PAID', paid_at = @now WHERE id = @id AND state = 'UNPAID'",
            new { id, now = now.ToUnixTimeMilliseconds() }, t, cancellationToken: cancellationToken)) == 1, cancellationToken);

    public async Task<bool> MarkMintQuotePaidAsync(DbConnection c, DbTransaction t, string id, DateTimeOffset now, CancellationToken cancellationToken) =>
        await c.ExecuteAsync(new CommandDefinition(
            "UPDATE mint_quotes SET state = 'PAID', paid_at = @now WHERE id = @id AND state = 'UNPAID'",
            new { id, now = now.ToUnixTimeMilliseconds() }, t, cancellationToken: cancellationToken)) == 1;

    public Task<bool> MarkMintQuotePaidByHashAsync(string paymentHash, DateTimeOffset now, CancellationToken cancellationToken) =>
        database.WriteAsync(async (c, t) => await c.ExecuteAsync(new CommandDefinition(
            "UPDATE mint_quotes SET state = 'PAID', paid_at = @now WHERE payment_hash = @paymentHash AND state = 'UNPAID'",
            new { paymentHash = paymentHash.ToLowerInvariant(), now = now.ToUnixTimeMilliseconds() }, t, cancellationToken: cancellationToken)) > 0, cancellationToken);

    public Task<MintQuoteRecord?> FindMintQuoteByPaymentHashAsync(string paymentHash, CancellationToken cancellationToken) =>
        database.ReadAsync(async c => (await c.QueryFirstOrDefaultAsync<MintRow>(new CommandDefinition(
            $"SELECT {MintColumns} FROM mint_quotes WHERE payment_hash = @paymentHash", new { paymentHash = paymentHash.ToLowerInvariant() },
            cancellationToken: cancellationToken)))?.ToRecord(), cancellationToken);

    public Task<ulong> OutstandingSatAsync(DateTimeOffset now, CancellationToken cancellationToken) =>
        database.ReadAsync(async c =>
        {
            // Sums in SQL as decimals/big integers would differ per dialect; the rows are few (quotes, not proofs).
            var minted = await c.QueryAsync<long>(new CommandDefinition(
                "SELECT amount FROM mint_quotes WHERE state IN ('PAID', 'ISSUED') OR (state = 'UNPAID' AND expires_at > @now)",
                new { now = now.ToUnixTimeMilliseconds() }, cancellationToken: cancellationToken));
            var melted = await c.QueryAsync<(long Amount, long? FeePaid)>(new CommandDefinition(
                "SELECT amount, fee_paid FROM melt_quotes WHERE state = 'PAID'", cancellationToken: cancellationToken));
            UInt128 inSum = 0, outSum = 0;
            foreach (var m in minted)
            {
                inSum += StoredAmount.FromColumn(m);
            }

            foreach (var (amount, fee) in melted)
            {
                outSum += StoredAmount.FromColumn(amount) + (fee is { } f ? StoredAmount.FromColumn(f) : 0UL);
            }

            return inSum > outSum ? (ulong)UInt128.Min(inSum - outSum, ulong.MaxValue) : 0UL;
        }, cancellationToken);

    public Task<bool> IsPaymentHashPaidAsync(string paymentHash, CancellationToken cancellationToken) =>
        database.ReadAsync(async c => await c.ExecuteScalarAsync<long>(new CommandDefinition(
            "SELECT COUNT(*) FROM melt_quotes WHERE payment_hash = @paymentHash AND state = 'PAID'",
            new { paymentHash = paymentHash.ToLowerInvariant() }, cancellationToken: cancellationToken)) > 0, cancellationToken);

    public async Task<bool> TryIssueMintQuoteAsync(DbConnection c, DbTransaction t, string id, DateTimeOffset now, CancellationToken cancellationToken) =>
        await c.ExecuteAsync(new CommandDefinition(
            "UPDATE mint_quotes SET state = 'ISSUED', issued_at = @now WHERE id = @id AND state = 'PAID'",
            new { id, now = now.ToUnixTimeMilliseconds() }, t, cancellationToken: cancellationToken)) == 1;

    public Task InsertMeltQuoteAsync(MeltQuoteRecord q, CancellationToken cancellationToken) =>
        database.WriteAsync((c, t) => c.ExecuteAsync(new CommandDefinition(
            """
            INSERT INTO melt_quotes (id, method, request, payment_hash, amount, fee_reserve, unit, state, created_at, expires_at, updated_at)
            VALUES (@Id, @Method, @Request, @PaymentHash, @Amount, @FeeReserve, @Unit, @State, @CreatedAt, @ExpiresAt, @UpdatedAt)
            """,
            new
            {
                q.Id,
                q.Method,
                q.Request,
                q.PaymentHash,
                Amount = StoredAmount.ToColumn(q.Amount),
                FeeReserve = StoredAmount.ToColumn(q.FeeReserve),
                q.Unit,
                q.State,
                CreatedAt = q.CreatedAt.ToUnixTimeMilliseconds(),
                ExpiresAt = q.ExpiresAt.ToUnixTimeMilliseconds(),
                UpdatedAt = q.UpdatedAt.ToUnixTimeMilliseconds(),
            }, t, cancellationToken: cancellationToken)), cancellationToken);

    public Task<MeltQuoteRecord?> FindMeltQuoteAsync(string id, CancellationToken cancellationToken) =>
        database.ReadAsync(async c => (await c.QuerySingleOrDefaultAsync<MeltRow>(new CommandDefinition(
            $"SELECT {MeltColumns} FROM melt_quotes WHERE id = @id", new { id }, cancellationToken: cancellationToken)))?.ToRecord(), cancellationToken);

    public async Task<bool> TryStartMeltAsync(DbConnection c, DbTransaction t, string id, ulong inputAmount, ulong inputFee, string? changeOutputs,
        DateTimeOffset now, CancellationToken cancellationToken) =>
        await c.ExecuteAsync(new CommandDefinition(
            """
            UPDATE melt_quotes SET state = 'PENDING', input_amount = @inputAmount, input_fee = @inputFee, change_outputs = @changeOutputs, updated_at = @now
            WHERE id = @id AND state = 'UNPAID'
            """,
            new
            {
                id,
                inputAmount = StoredAmount.ToColumn(inputAmount),
                inputFee = StoredAmount.ToColumn(inputFee),
                changeOutputs,
                now = now.ToUnixTimeMilliseconds(),
            }, t, cancellationToken: cancellationToken)) == 1;

    public async Task<bool> CompleteMeltAsync(DbConnection c, DbTransaction t, string id, ulong feePaid, string? preimage, string? change,
        DateTimeOffset now, CancellationToken cancellationToken) =>
        await c.ExecuteAsync(new CommandDefinition(
            """
            UPDATE melt_quotes SET state = 'PAID', fee_paid = @feePaid, payment_preimage = @preimage, change = @change, updated_at = @now
            WHERE id = @id AND state = 'PENDING'
            """,
            new { id, feePaid = StoredAmount.ToColumn(feePaid), preimage, change, now = now.ToUnixTimeMilliseconds() },
            t, cancellationToken: cancellationToken)) == 1;

    public async Task<bool> ResetMeltAsync(DbConnection c, DbTransaction t, string id, DateTimeOffset now, CancellationToken cancellationToken) =>
        await c.ExecuteAsync(new CommandDefinition(
            "UPDATE melt_quotes SET state = 'UNPAID', change_outputs = NULL, updated_at = @now WHERE id = @id AND state = 'PENDING'",
            new { id, now = now.ToUnixTimeMilliseconds() }, t, cancellationToken: cancellationToken)) == 1;

    public Task<IReadOnlyList<MeltQuoteRecord>> ListPendingMeltsAsync(DateTimeOffset updatedBefore, CancellationToken cancellationToken) =>
        database.ReadAsync<IReadOnlyList<MeltQuoteRecord>>(async c =>
        {
            var rows = await c.QueryAsync<MeltRow>(new CommandDefinition(
                $"SELECT {MeltColumns} FROM melt_quotes WHERE state = 'PENDING' AND updated_at < @before",
                new { before = updatedBefore.ToUnixTimeMilliseconds() }, cancellationToken: cancellationToken));
            return [.. rows.Select(r => r.ToRecord())];
        }, cancellationToken);

    private static DateTimeOffset At(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms);

    private sealed class MintRow
    {
        public string Id { get; set; } = "";
        public string Method { get; set; } = "";
        public string Request { get; set; } = "";
        public string PaymentHash { get; set; } = "";
        public long Amount { get; set; }
        public string Unit { get; set; } = "";
        public string State { get; set; } = "";
        public long CreatedAt { get; set; }
        public long ExpiresAt { get; set; }
        public long? PaidAt { get; set; }
        public long? IssuedAt { get; set; }
        public string? Pubkey { get; set; }

        public MintQuoteRecord ToRecord() => new(Id, Method, Request, PaymentHash, StoredAmount.FromColumn(Amount), Unit, State,
            At(CreatedAt), At(ExpiresAt), PaidAt is { } p ? At(p) : null, IssuedAt is { } i ? At(i) : null, Pubkey);
    }

    private sealed class MeltRow
    {
        public string Id { get; set; } = "";
        public string Method { get; set; } = "";
        public string Request { get; set; } = "";
        public string PaymentHash { get; set; } = "";
        public long Amount { get; set; }
        public long FeeReserve { get; set; }
        public string Unit { get; set; } = "";
        public string State { get; set; } = "";
        public long CreatedAt { get; set; }
        public long ExpiresAt { get; set; }
        public long UpdatedAt { get; set; }
        public long? InputAmount { get; set; }
        public long? InputFee { get; set; }
        public string? ChangeOutputs { get; set; }
        public long? FeePaid { get; set; }
        public string? PaymentPreimage { get; set; }
        public string? Change { get; set; }

        public MeltQuoteRecord ToRecord() => new(Id, Method, Request, PaymentHash, StoredAmount.FromColumn(Amount), StoredAmount.FromColumn(FeeReserve),
            Unit, State, At(CreatedAt), At(ExpiresAt), At(UpdatedAt),
            InputAmount is { } ia ? StoredAmount.FromColumn(ia) : null, InputFee is { } f ? StoredAmount.FromColumn(f) : null, ChangeOutputs,
            FeePaid is { } fp ? StoredAmount.FromColumn(fp) : null, PaymentPreimage, Change);
    }
}
