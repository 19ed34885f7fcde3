using System.Data.Common;
using Dapper;

namespace Coinop.Storage.Payments;

public static class WorkloadAccountState
{
    public const string Open = "OPEN";
    public const string Closed = "CLOSED";
}

/// <summary>
/// The bookkeeping of a paid workload beside its ledger account (<c>workload:&lt;id&gt;</c>, which holds the money):
/// who paid (the balance account of the token or key that paid at submit: only that credential may cancel or collect
/// the refund), how far its time is settled, what it has been charged, and, once closed, its refund.
/// </summary>
public sealed record WorkloadAccount(
    string WorkloadId,
    string PayerAccount,
    DateTimeOffset SettledUntil,
    long ChargedMsat,
    string State,
    long? RefundMsat,
    string? RefundToken,
    DateTimeOffset CreatedAt,
    DateTimeOffset? ClosedAt)
{
    public bool IsOpen => State == WorkloadAccountState.Open;
}

/// <summary>An open account whose workload has finished: its money must still be settled and refunded.</summary>
public sealed record FinishedWorkloadAccount(string WorkloadId, DateTimeOffset EndedAt, DateTimeOffset PaidUntil);

/// <summary>
/// Paid workloads' accounts. Writes run inside the caller's transaction, next to the ledger transfers they describe.
/// Settling advances <c>settled_until</c> only from the value it was read at, and closing is OPEN → CLOSED once, so of
/// two market nodes (or a node and its own retry) settling the same span or closing the same workload, one moves money.
/// </summary>
public interface IWorkloadAccountStore
{
    Task OpenAsync(DbConnection c, DbTransaction t, string workloadId, string payerAccount, DateTimeOffset settledFrom, DateTimeOffset now,
        CancellationToken cancellationToken);

    Task<WorkloadAccount?> FindAsync(string workloadId, CancellationToken cancellationToken);

    Task<WorkloadAccount?> FindAsync(DbConnection c, DbTransaction? t, string workloadId, CancellationToken cancellationToken);

    /// <summary>Moves <c>settled_until</c> from <paramref name="from"/> to <paramref name="to"/> adding the charge; false when it was not at <paramref name="from"/> or the account is closed.</summary>
    Task<bool> AdvanceAsync(DbConnection c, DbTransaction t, string workloadId, DateTimeOffset from, DateTimeOffset to, long chargedMsat,
        CancellationToken cancellationToken);

    /// <summary>Closes an open account with its refund; false when it was closed already.</summary>
    Task<bool> CloseAsync(DbConnection c, DbTransaction t, string workloadId, long refundMsat, string? refundToken, DateTimeOffset now,
        CancellationToken cancellationToken);

    /// <summary>Open accounts of workloads that have finished (a market that died between the two, or a close that failed).</summary>
    Task<IReadOnlyList<FinishedWorkloadAccount>> OpenOfFinishedAsync(CancellationToken cancellationToken);
}

public sealed class WorkloadAccountStore(Database database) : IWorkloadAccountStore
{
    private const string Columns = """
        workload_id AS WorkloadId, payer_account AS PayerAccount, settled_until AS SettledUntil, charged_msat AS ChargedMsat, state AS State,
        refund_msat AS RefundMsat, refund_token AS RefundToken, created_at AS CreatedAt, closed_at AS ClosedAt
        """;

    public Task OpenAsync(DbConnection c, DbTransaction t, string workloadId, string payerAccount, DateTimeOffset settledFrom, DateTimeOffset now,
        CancellationToken cancellationToken) =>
        c.ExecuteAsync(new CommandDefinition(
            """
            INSERT INTO workload_accounts (workload_id, payer_account, settled_until, charged_msat, state, created_at)
            VALUES (@workloadId, @payerAccount, @from, 0, 'OPEN', @now)
            """,
            new { workloadId, payerAccount, from = settledFrom.ToUnixTimeMilliseconds(), now = now.ToUnixTimeMilliseconds() }, t,
            cancellationToken: cancellationToken));

    public Task<WorkloadAccount?> FindAsync(string workloadId, CancellationToken cancellationToken) =>
        database.ReadAsync(c => FindAsync(c, null, workloadId, cancellationToken), cancellationToken);

    public async Task<WorkloadAccount?> FindAsync(DbConnection c, DbTransaction? t, string workloadId, CancellationToken cancellationToken) =>
        (await c.QuerySingleOrDefaultAsync<Row>(new CommandDefinition(
            $"SELECT {Columns} FROM workload_accounts WHERE workload_id = @workloadId", new { workloadId }, t, cancellationToken: cancellationToken)))?.ToRecord();

    public async Task<bool> AdvanceAsync(DbConnection c, DbTransaction t, string workloadId, DateTimeOffset from, DateTimeOffset to, long chargedMsat,
        CancellationToken cancellationToken) =>
        await c.ExecuteAsync(new CommandDefinition(
            """
            UPDATE workload_accounts SET settled_until = @to, charged_msat = charged_msat + @chargedMsat
            WHERE workload_id = @workloadId AND settled_until = @from AND @to >= @from AND state = 'OPEN'
            """,
            new { workloadId, from = from.ToUnixTimeMilliseconds(), to = to.ToUnixTimeMilliseconds(), chargedMsat }, t,
            cancellationToken: cancellationToken)) == 1;

    public async Task<bool> CloseAsync(DbConnection c, DbTransaction t, string workloadId, long refundMsat, string? refundToken, DateTimeOffset now,
        CancellationToken cancellationToken) =>
        await c.ExecuteAsync(new CommandDefinition(
            """
            UPDATE workload_accounts SET state = 'CLOSED', refund_msat = @refundMsat, refund_token = @refundToken, closed_at = @now
            WHERE workload_id = @workloadId AND state = 'OPEN'
            """,
            new { workloadId, refundMsat, refundToken, now = now.ToUnixTimeMilliseconds() }, t, cancellationToken: cancellationToken)) == 1;

    public Task<IReadOnlyList<FinishedWorkloadAccount>> OpenOfFinishedAsync(CancellationToken cancellationToken) =>
        database.ReadAsync<IReadOnlyList<FinishedWorkloadAccount>>(async c =>
        {
            var rows = await c.QueryAsync<FinishedRow>(new CommandDefinition(
                """
                SELECT a.workload_id AS WorkloadId, w.since AS EndedAt, w.paid_until AS PaidUntil
                FROM workload_accounts a JOIN workloads w ON w.id = a.workload_id
                WHERE a.state = 'OPEN' AND w.state IN ('failed', 'completed', 'cancelled')
                ORDER BY a.workload_id
                """, cancellationToken: cancellationToken));
            return [.. rows.Select(r => new FinishedWorkloadAccount(r.WorkloadId, Time(r.EndedAt), Time(r.PaidUntil)))];
        }, cancellationToken);

    private static DateTimeOffset Time(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms);

    private sealed class Row
    {
        public string WorkloadId { get; set; } = "";
        public string PayerAccount { get; set; } = "";
        public long SettledUntil { get; set; }
        public long ChargedMsat { get; set; }
        public string State { get; set; } = "";
        public long? RefundMsat { get; set; }
        public string? RefundToken { get; set; }
        public long CreatedAt { get; set; }
        public long? ClosedAt { get; set; }

        public WorkloadAccount ToRecord() => new(WorkloadId, PayerAccount, Time(SettledUntil), ChargedMsat, State, RefundMsat, RefundToken, Time(CreatedAt),
            ClosedAt is { } closed ? Time(closed) : null);
    }

    private sealed class FinishedRow
    {
        public string WorkloadId { get; set; } = "";
        public long EndedAt { get; set; }
        public long PaidUntil { get; set; }
    }
}
