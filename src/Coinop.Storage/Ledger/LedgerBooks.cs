using Dapper;

namespace Coinop.Storage.Ledger;

/// <summary>
/// The books read whole, for reports and audits rather than for moving money: the totals the ledger equations are
/// checked on, a provider's earnings, and the audit that recomputes every account from the journal. Reached through
/// <see cref="ILedgerStore"/>; each read is its own statement or snapshot, never part of a caller's transaction.
/// </summary>
public sealed class LedgerBooks(Database database)
{
    public Task<LedgerSummary> SummaryAsync(CancellationToken cancellationToken) =>
        database.ReadAsync(async c =>
        {
            // One statement, so PostgreSQL answers from one snapshot.
            var rows = (await c.QueryAsync<TotalsRow>(new CommandDefinition(
                """
                SELECT account AS Name, credited_msat AS Credited, debited_msat AS Debited FROM ledger_accounts WHERE kind IN ('source', 'clearing', 'sink')
                UNION ALL
                SELECT kind AS Name, CAST(COALESCE(SUM(credited_msat), 0) AS BIGINT) AS Credited, CAST(COALESCE(SUM(debited_msat), 0) AS BIGINT) AS Debited
                FROM ledger_accounts WHERE kind IN ('balance', 'provider', 'hold') GROUP BY kind
                """, cancellationToken: cancellationToken))).ToDictionary(r => r.Name, StringComparer.Ordinal);
            TotalsRow Get(string name) => rows.GetValueOrDefault(name) ?? new TotalsRow();
            return new LedgerSummary(
                ReceivedMsat: Get(LedgerAccounts.Received).Debited,
                SpentMsat: Get(LedgerAccounts.Spent).Credited,
                RefundedMsat: Get(LedgerAccounts.Refunded).Balance,
                BalancesMsat: Get("balance").Balance,
                HeldMsat: Get("hold").Balance,
                ProviderEarnedMsat: Get("provider").Credited,
                OwedMsat: Get("provider").Balance,
                FeeMsat: Get(LedgerAccounts.Fee).Balance,
                PaidOutMsat: Get(LedgerAccounts.PaidOut).Balance);
        }, cancellationToken);

    public Task<ProviderEarnings> EarningsAsync(string providerId, CancellationToken cancellationToken) =>
        database.ReadAsync(async c =>
        {
            var row = await c.QuerySingleOrDefaultAsync<TotalsRow>(new CommandDefinition(
                "SELECT account AS Name, credited_msat AS Credited, debited_msat AS Debited FROM ledger_accounts WHERE account = @account",
                new { account = LedgerAccounts.Provider(providerId) }, cancellationToken: cancellationToken));
            return new ProviderEarnings(providerId, row?.Credited ?? 0, row?.Debited ?? 0);
        }, cancellationToken);

    public Task<IReadOnlyList<string>> AuditAsync(CancellationToken cancellationToken) =>
        // One snapshot: settlements committing between the reads would otherwise show as an imbalance.
        database.ReadSnapshotAsync<IReadOnlyList<string>>(async (c, t) =>
        {
            var problems = new List<string>();
            var accounts = (await c.QueryAsync<TotalsRow>(new CommandDefinition(
                "SELECT account AS Name, credited_msat AS Credited, debited_msat AS Debited FROM ledger_accounts", transaction: t, cancellationToken: cancellationToken)))
                .ToDictionary(r => r.Name, StringComparer.Ordinal);
            var journal = (await c.QueryAsync<TotalsRow>(new CommandDefinition(
                """
                SELECT account AS Name, CAST(SUM(credited) AS BIGINT) AS Credited, CAST(SUM(debited) AS BIGINT) AS Debited FROM (
                    SELECT to_account AS account, amount_msat AS credited, 0 AS debited FROM ledger_entries
                    UNION ALL
                    SELECT from_account AS account, 0 AS credited, amount_msat AS debited FROM ledger_entries
                ) moves GROUP BY account
                """, transaction: t, cancellationToken: cancellationToken))).ToDictionary(r => r.Name, StringComparer.Ordinal);
            foreach (var name in accounts.Keys.Union(journal.Keys))
            {
                var stored = accounts.GetValueOrDefault(name) ?? new TotalsRow();
                var recomputed = journal.GetValueOrDefault(name) ?? new TotalsRow();
                if (stored.Credited != recomputed.Credited || stored.Debited != recomputed.Debited)
                {
                    problems.Add($"{name}: stored +{stored.Credited}/-{stored.Debited}, journal +{recomputed.Credited}/-{recomputed.Debited}");
                }
            }

            var held = await c.ExecuteScalarAsync<long?>(new CommandDefinition(
                "SELECT CAST(SUM(amount_msat) AS BIGINT) FROM payment_holds WHERE state = 'HELD'", transaction: t, cancellationToken: cancellationToken)) ?? 0;
            var holds = accounts.GetValueOrDefault(LedgerAccounts.Holds)?.Balance ?? 0;
            if (held != holds)
            {
                problems.Add($"holds: account {holds}, HELD rows {held}");
            }

            var closed = await c.QueryAsync<string>(new CommandDefinition(
                "SELECT workload_id FROM workload_accounts WHERE state = 'CLOSED'", transaction: t, cancellationToken: cancellationToken));
            foreach (var workload in closed)
            {
                if (accounts.GetValueOrDefault(LedgerAccounts.Workload(workload)) is { Balance: not 0 } left)
                {
                    problems.Add($"workload {workload} is closed but its account holds {left.Balance} msat");
                }
            }

            var total = accounts.Values.Aggregate(Int128.Zero, (sum, a) => sum + a.Credited - a.Debited);
            if (total != 0)
            {
                problems.Add($"the accounts do not sum to zero ({total})");
            }

            return problems;
        }, cancellationToken);

    private sealed class TotalsRow
    {
        public string Name { get; set; } = "";
        public long Credited { get; set; }
        public long Debited { get; set; }
        public long Balance => Credited - Debited;
    }
}
