using System.Data.Common;
using Dapper;

namespace Coinop.Storage.Ledger;

/// <summary>Who pays for a held request: a token given with the request, or a balance.</summary>
public static class HoldPayer
{
    public const string Token = "token";
    public const string Balance = "balance";
}

public static class HoldState
{
    public const string Held = "HELD";
    public const string Settled = "SETTLED";
    public const string Released = "RELEASED";
}

/// <summary>
/// A request's reservation: <see cref="AmountMsat"/> sits in the holds account until the request is settled or
/// released. <see cref="ReleaseTo"/> is the balance account it returns to if the request dies with its node.
/// </summary>
public sealed record PaymentHold(
    string RequestId,
    string NodeId,
    string Payer,
    string ReleaseTo,
    long AmountMsat,
    string State,
    DateTimeOffset CreatedAt);

/// <summary>The change token of a closed hold that may not have reached its consumer.</summary>
public sealed record UncollectedChange(string RequestId, string Token);

/// <summary>How a hold ended, recorded on its row.</summary>
public sealed record HoldOutcome(string State, long? CostMsat = null, string? ProviderId = null, long? ChangeSat = null);

/// <summary>
/// The per-request holds. Writes run inside the caller's transaction, next to the ledger transfer that fills or
/// empties the holds account. Closing is a conditional update (HELD → SETTLED or RELEASED), so of a settle, a
/// release and a recovery racing for one hold, exactly one moves its money.
/// </summary>
public interface IPaymentHoldStore
{
    Task InsertAsync(DbConnection c, DbTransaction t, PaymentHold hold, CancellationToken cancellationToken);

    /// <summary>Closes a HELD hold and returns it as it was; null when it was not HELD (already closed, or unknown).</summary>
    Task<PaymentHold?> TryCloseAsync(DbConnection c, DbTransaction t, string requestId, HoldOutcome outcome, DateTimeOffset now,
        CancellationToken cancellationToken);

    /// <summary>
    /// Adds <paramref name="extraMsat"/> to a HELD hold (a retry re-reserved for a dearer provider) and returns it as it is
    /// now; null when it is not HELD. The caller moves the same amount into the holds account in the same transaction.
    /// </summary>
    Task<PaymentHold?> TryGrowAsync(DbConnection c, DbTransaction t, string requestId, long extraMsat, CancellationToken cancellationToken);

    /// <summary>Records the change token issued when a hold closed (so an operator can hand it over again).</summary>
    Task SetChangeTokenAsync(DbConnection c, DbTransaction t, string requestId, string token, CancellationToken cancellationToken);

    Task<PaymentHold?> FindAsync(string requestId, CancellationToken cancellationToken);

    /// <summary>The change tokens of holds that return to <paramref name="releaseTo"/> and were not collected into it yet.</summary>
    Task<IReadOnlyList<UncollectedChange>> UncollectedChangeAsync(string releaseTo, CancellationToken cancellationToken);

    /// <summary>Marks a hold's change collected; false when it was collected already (or has none).</summary>
    Task<bool> MarkChangeCollectedAsync(DbConnection c, DbTransaction t, string requestId, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>The HELD holds of a market node (created before <paramref name="createdBefore"/> when given).</summary>
    Task<IReadOnlyList<PaymentHold>> HeldAsync(string nodeId, DateTimeOffset? createdBefore, CancellationToken cancellationToken);

    /// <summary>The market nodes that have HELD holds.</summary>
    Task<IReadOnlyList<string>> NodesHoldingAsync(CancellationToken cancellationToken);
}

public sealed class PaymentHoldStore(Database database) : IPaymentHoldStore
{
    private const string Columns =
        "request_id AS RequestId, node_id AS NodeId, payer AS Payer, release_to AS ReleaseTo, amount_msat AS AmountMsat, state AS State, created_at AS CreatedAt";

    public async Task InsertAsync(DbConnection c, DbTransaction t, PaymentHold hold, CancellationToken cancellationToken)
    {
        using var insert = database.Statement(c, t,
            """
            INSERT INTO payment_holds (request_id, node_id, payer, release_to, amount_msat, state, created_at)
            VALUES (@RequestId, @NodeId, @Payer, @ReleaseTo, @AmountMsat, @State, @CreatedAt)
            """);
        await insert.Set("@RequestId", hold.RequestId).Set("@NodeId", hold.NodeId).Set("@Payer", hold.Payer).Set("@ReleaseTo", hold.ReleaseTo)
            .Set("@AmountMsat", hold.AmountMsat).Set("@State", hold.State).Set("@CreatedAt", hold.CreatedAt.ToUnixTimeMilliseconds()).ExecuteAsync(cancellationToken);
    }

    public async Task<PaymentHold?> TryCloseAsync(DbConnection c, DbTransaction t, string requestId, HoldOutcome outcome, DateTimeOffset now,
        CancellationToken cancellationToken)
    {
        using var close = database.Statement(c, t,
            $"""
            UPDATE payment_holds SET state = @State, closed_at = @now, cost_msat = @CostMsat, provider_id = @ProviderId, change_sat = @ChangeSat
            WHERE request_id = @requestId AND state = 'HELD'
            RETURNING {Columns}
            """);
        close.Set("@requestId", requestId).Set("@State", outcome.State).Set("@CostMsat", outcome.CostMsat).Set("@ProviderId", outcome.ProviderId)
            .Set("@ChangeSat", outcome.ChangeSat).Set("@now", now.ToUnixTimeMilliseconds());
        await using var reader = await close.ReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            return null;
        }

        // RETURNING gives the new state; callers want the hold as it was when they closed it.
        return new PaymentHold(reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetInt64(4), HoldState.Held,
            DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(6)));
    }

    public async Task<PaymentHold?> TryGrowAsync(DbConnection c, DbTransaction t, string requestId, long extraMsat, CancellationToken cancellationToken) =>
        (await c.QuerySingleOrDefaultAsync<Row>(new CommandDefinition(
            $"""
            UPDATE payment_holds SET amount_msat = amount_msat + @extraMsat
            WHERE request_id = @requestId AND state = 'HELD'
            RETURNING {Columns}
            """,
            new { requestId, extraMsat }, t, cancellationToken: cancellationToken)))?.ToRecord();

    public async Task SetChangeTokenAsync(DbConnection c, DbTransaction t, string requestId, string token, CancellationToken cancellationToken)
    {
        using var update = database.Statement(c, t, "UPDATE payment_holds SET change_token = @token WHERE request_id = @requestId");
        await update.Set("@requestId", requestId).Set("@token", token).ExecuteAsync(cancellationToken);
    }

    public Task<PaymentHold?> FindAsync(string requestId, CancellationToken cancellationToken) =>
        database.ReadAsync(async c => (await c.QuerySingleOrDefaultAsync<Row>(new CommandDefinition(
            $"SELECT {Columns} FROM payment_holds WHERE request_id = @requestId", new { requestId }, cancellationToken: cancellationToken)))?.ToRecord(),
            cancellationToken);

    public Task<IReadOnlyList<UncollectedChange>> UncollectedChangeAsync(string releaseTo, CancellationToken cancellationToken) =>
        database.ReadAsync<IReadOnlyList<UncollectedChange>>(async c => [.. await c.QueryAsync<UncollectedChange>(new CommandDefinition(
            """
            SELECT request_id AS RequestId, change_token AS Token FROM payment_holds
            WHERE release_to = @releaseTo AND change_token IS NOT NULL AND change_collected_at IS NULL ORDER BY created_at
            """, new { releaseTo }, cancellationToken: cancellationToken))], cancellationToken);

    public async Task<bool> MarkChangeCollectedAsync(DbConnection c, DbTransaction t, string requestId, DateTimeOffset now, CancellationToken cancellationToken) =>
        await c.ExecuteAsync(new CommandDefinition(
            "UPDATE payment_holds SET change_collected_at = @now WHERE request_id = @requestId AND change_token IS NOT NULL AND change_collected_at IS NULL",
            new { requestId, now = now.ToUnixTimeMilliseconds() }, t, cancellationToken: cancellationToken)) == 1;

    public Task<IReadOnlyList<PaymentHold>> HeldAsync(string nodeId, DateTimeOffset? createdBefore, CancellationToken cancellationToken) =>
        database.ReadAsync<IReadOnlyList<PaymentHold>>(async c =>
        {
            var rows = await c.QueryAsync<Row>(new CommandDefinition(
                $"SELECT {Columns} FROM payment_holds WHERE node_id = @nodeId AND state = 'HELD' AND created_at < @before ORDER BY created_at",
                new { nodeId, before = createdBefore?.ToUnixTimeMilliseconds() ?? long.MaxValue }, cancellationToken: cancellationToken));
            return [.. rows.Select(r => r.ToRecord())];
        }, cancellationToken);

    public Task<IReadOnlyList<string>> NodesHoldingAsync(CancellationToken cancellationToken) =>
        database.ReadAsync<IReadOnlyList<string>>(async c => [.. await c.QueryAsync<string>(new CommandDefinition(
            "SELECT DISTINCT node_id FROM payment_holds WHERE state = 'HELD'", cancellationToken: cancellationToken))], cancellationToken);

    private sealed class Row
    {
        public string RequestId { get; set; } = "";
        public string NodeId { get; set; } = "";
        public string Payer { get; set; } = "";
        public string ReleaseTo { get; set; } = "";
        public long AmountMsat { get; set; }
        public string State { get; set; } = "";
        public long CreatedAt { get; set; }

        public PaymentHold ToRecord() =>
            new(RequestId, NodeId, Payer, ReleaseTo, AmountMsat, State, DateTimeOffset.FromUnixTimeMilliseconds(CreatedAt));
    }
}
