using Coinop.Storage.Ledger;
using Dapper;

namespace Coinop.Storage.Reports;

/// <summary>Money that moved in one time bucket (msat), from the journal.</summary>
public sealed record MoneyBucket(DateTimeOffset At, long ReceivedMsat, long SpentMsat, long FeeMsat, long RefundedMsat, long PaidOutMsat);

/// <summary>The ecash of one keyset: what its signatures, spent proofs and the market's change stock add up to (sat).</summary>
public sealed record KeysetEcash(string KeysetId, UInt128 IssuedSat, UInt128 SpentSat, UInt128 InStockSat)
{
    /// <summary>Issued and neither spent nor in the market's own change stock: ecash held by others.</summary>
    public UInt128 OutstandingSat => IssuedSat >= SpentSat + InStockSat ? IssuedSat - SpentSat - InStockSat : UInt128.Zero;
}

/// <summary>A mint or melt quote that is not finished.</summary>
public sealed record OpenQuote(string Kind, string Id, string State, ulong Amount, string Unit, DateTimeOffset CreatedAt, DateTimeOffset ExpiresAt);

/// <summary>One payout to a provider.</summary>
public sealed record PayoutEntry(DateTimeOffset At, string ProviderId, long AmountMsat, string Reference);

/// <summary>A provider's account: what it earned and was paid out (msat).</summary>
public sealed record ProviderAccount(string ProviderId, long EarnedMsat, long PaidOutMsat)
{
    public long OwedMsat => EarnedMsat - PaidOutMsat;
}

/// <summary>Jobs of one model and outcome in one time bucket.</summary>
public sealed record TrafficBucket(DateTimeOffset At, string Model, string Outcome, long Jobs, long OutputTokens);

/// <summary>How many jobs ended with one error code.</summary>
public sealed record ErrorCount(string Code, long Jobs);

/// <summary>One provider's jobs in a window: how many, how slow to the first byte, how many failed.</summary>
public sealed record ProviderTraffic(string ProviderId, long Jobs, double AvgFirstByteMs, long MaxFirstByteMs, long Failed, long OutputTokens);

/// <summary>One movement of a balance, grouped by what caused it (a request's reserve and settle are one line).</summary>
public sealed record BalanceMovement(DateTimeOffset At, string Event, string Reference, long AmountMsat);

/// <summary>
/// Read-only reports over the store for the market's web pages: the journal by time and account, the mint's ecash per
/// keyset and its open quotes, and job traffic. Every query is bounded by a time window or a row limit.
/// </summary>
public interface IMarketReportStore
{
    Task<IReadOnlyList<MoneyBucket>> MoneyAsync(DateTimeOffset since, TimeSpan bucket, CancellationToken cancellationToken);

    Task<IReadOnlyList<KeysetEcash>> EcashByKeysetAsync(CancellationToken cancellationToken);

    Task<IReadOnlyList<OpenQuote>> OpenQuotesAsync(DateTimeOffset now, int limit, CancellationToken cancellationToken);

    Task<IReadOnlyList<PayoutEntry>> PayoutsAsync(int limit, CancellationToken cancellationToken);

    Task<IReadOnlyList<ProviderAccount>> ProviderAccountsAsync(CancellationToken cancellationToken);

    Task<IReadOnlyList<EnrollmentCodeView>> EnrollmentCodesAsync(int limit, CancellationToken cancellationToken);

    Task<IReadOnlyList<TrafficBucket>> TrafficAsync(DateTimeOffset since, TimeSpan bucket, CancellationToken cancellationToken);

    Task<IReadOnlyList<ErrorCount>> ErrorsAsync(DateTimeOffset since, CancellationToken cancellationToken);

    Task<IReadOnlyList<ProviderTraffic>> ProviderTrafficAsync(DateTimeOffset since, CancellationToken cancellationToken);

    /// <summary>The newest movements of one ledger account, newest first.</summary>
    Task<IReadOnlyList<BalanceMovement>> MovementsAsync(string account, int limit, CancellationToken cancellationToken);
}

/// <summary>An enrollment code as the operator sees it.</summary>
public sealed record EnrollmentCodeView(string Code, int MaxUses, int Uses, DateTimeOffset CreatedAt, DateTimeOffset? ExpiresAt);

public sealed class MarketReportStore(Database database) : IMarketReportStore
{
    public Task<IReadOnlyList<MoneyBucket>> MoneyAsync(DateTimeOffset since, TimeSpan bucket, CancellationToken cancellationToken) =>
        database.ReadAsync<IReadOnlyList<MoneyBucket>>(async c =>
        {
            var rows = await c.QueryAsync<MoneyRow>(new CommandDefinition(
                $"""
                SELECT (at / @bucket) * @bucket AS At,
                       CAST(SUM(CASE WHEN from_account = '{LedgerAccounts.Received}' THEN amount_msat ELSE 0 END) AS BIGINT) AS Received,
                       CAST(SUM(CASE WHEN to_account = '{LedgerAccounts.Spent}' THEN amount_msat ELSE 0 END) AS BIGINT) AS Spent,
                       CAST(SUM(CASE WHEN to_account = '{LedgerAccounts.Fee}' THEN amount_msat ELSE 0 END) AS BIGINT) AS Fee,
                       CAST(SUM(CASE WHEN to_account = '{LedgerAccounts.Refunded}' THEN amount_msat ELSE 0 END) AS BIGINT) AS Refunded,
                       CAST(SUM(CASE WHEN to_account = '{LedgerAccounts.PaidOut}' THEN amount_msat ELSE 0 END) AS BIGINT) AS PaidOut
                FROM ledger_entries WHERE at >= @since GROUP BY 1 ORDER BY 1
                """,
                new { since = since.ToUnixTimeMilliseconds(), bucket = (long)bucket.TotalMilliseconds }, cancellationToken: cancellationToken));
            return [.. rows.Select(r => new MoneyBucket(DateTimeOffset.FromUnixTimeMilliseconds(r.At), r.Received, r.Spent, r.Fee, r.Refunded, r.PaidOut))];
        }, cancellationToken);

    public Task<IReadOnlyList<KeysetEcash>> EcashByKeysetAsync(CancellationToken cancellationToken) =>
        database.ReadAsync<IReadOnlyList<KeysetEcash>>(async c =>
        {
            // Amounts are the bit patterns of unsigned values (a note may be worth 2^63), so they are counted per
            // denomination in SQL and summed here, exactly.
            async Task<Dictionary<string, UInt128>> SumAsync(string sql)
            {
                var sums = new Dictionary<string, UInt128>(StringComparer.Ordinal);
                foreach (var row in await c.QueryAsync<DenominationRow>(new CommandDefinition(sql, cancellationToken: cancellationToken)))
                {
                    sums[row.KeysetId] = sums.GetValueOrDefault(row.KeysetId) + (UInt128)unchecked((ulong)row.Amount) * (ulong)row.Count;
                }

                return sums;
            }

            var keysets = (await c.QueryAsync<string>(new CommandDefinition(
                "SELECT id FROM mint_keysets ORDER BY derivation_index", cancellationToken: cancellationToken))).ToList();
            var issued = await SumAsync("SELECT keyset_id AS KeysetId, amount AS Amount, COUNT(*) AS Count FROM mint_signatures GROUP BY keyset_id, amount");
            var spent = await SumAsync("SELECT keyset_id AS KeysetId, amount AS Amount, COUNT(*) AS Count FROM mint_proofs WHERE state = 'SPENT' GROUP BY keyset_id, amount");
            var stock = await SumAsync("SELECT keyset_id AS KeysetId, amount AS Amount, COUNT(*) AS Count FROM change_stock GROUP BY keyset_id, amount");
            return [.. keysets.Select(k => new KeysetEcash(k, issued.GetValueOrDefault(k), spent.GetValueOrDefault(k), stock.GetValueOrDefault(k)))];
        }, cancellationToken);

    public Task<IReadOnlyList<OpenQuote>> OpenQuotesAsync(DateTimeOffset now, int limit, CancellationToken cancellationToken) =>
        database.ReadAsync<IReadOnlyList<OpenQuote>>(async c =>
        {
            // A paid mint quote waits for its ecash to be claimed and a pending melt for its payment to settle, expired
            // or not; an unpaid one is open until it expires.
            var rows = await c.QueryAsync<QuoteRow>(new CommandDefinition(
                """
                SELECT * FROM (
                    SELECT 'mint' AS Kind, id AS Id, state AS State, amount AS Amount, unit AS Unit, created_at AS CreatedAt, expires_at AS ExpiresAt
                    FROM mint_quotes WHERE state = 'PAID' OR (state = 'UNPAID' AND expires_at > @now)
                    UNION ALL
                    SELECT 'melt' AS Kind, id AS Id, state AS State, amount AS Amount, unit AS Unit, created_at AS CreatedAt, expires_at AS ExpiresAt
                    FROM melt_quotes WHERE state = 'PENDING' OR (state = 'UNPAID' AND expires_at > @now)
                ) q ORDER BY CreatedAt DESC LIMIT @limit
                """, new { now = now.ToUnixTimeMilliseconds(), limit }, cancellationToken: cancellationToken));
            return [.. rows.Select(r => new OpenQuote(r.Kind, r.Id, r.State, unchecked((ulong)r.Amount), r.Unit,
                DateTimeOffset.FromUnixTimeMilliseconds(r.CreatedAt), DateTimeOffset.FromUnixTimeMilliseconds(r.ExpiresAt)))];
        }, cancellationToken);

    public Task<IReadOnlyList<PayoutEntry>> PayoutsAsync(int limit, CancellationToken cancellationToken) =>
        database.ReadAsync<IReadOnlyList<PayoutEntry>>(async c =>
        {
            var rows = await c.QueryAsync<EntryRow>(new CommandDefinition(
                // The literal matches the partial index ledger_entries_paid_out (a parameter would not let SQLite use it).
                $"SELECT at AS At, from_account AS Account, amount_msat AS Amount, reference AS Reference, event AS Event FROM ledger_entries WHERE to_account = '{LedgerAccounts.PaidOut}' ORDER BY id DESC LIMIT @limit",
                new { limit }, cancellationToken: cancellationToken));
            return [.. rows.Select(r => new PayoutEntry(DateTimeOffset.FromUnixTimeMilliseconds(r.At),
                r.Account.StartsWith(LedgerAccounts.ProviderPrefix, StringComparison.Ordinal) ? r.Account[LedgerAccounts.ProviderPrefix.Length..] : r.Account,
                r.Amount, r.Reference))];
        }, cancellationToken);

    public Task<IReadOnlyList<ProviderAccount>> ProviderAccountsAsync(CancellationToken cancellationToken) =>
        database.ReadAsync<IReadOnlyList<ProviderAccount>>(async c =>
        {
            var rows = await c.QueryAsync<AccountRow>(new CommandDefinition(
                "SELECT account AS Account, credited_msat AS Credited, debited_msat AS Debited FROM ledger_accounts WHERE kind = 'provider'",
                cancellationToken: cancellationToken));
            return [.. rows.Select(r => new ProviderAccount(r.Account[LedgerAccounts.ProviderPrefix.Length..], r.Credited, r.Debited))];
        }, cancellationToken);

    public Task<IReadOnlyList<EnrollmentCodeView>> EnrollmentCodesAsync(int limit, CancellationToken cancellationToken) =>
        database.ReadAsync<IReadOnlyList<EnrollmentCodeView>>(async c =>
        {
            var rows = await c.QueryAsync<CodeRow>(new CommandDefinition(
                "SELECT code AS Code, max_uses AS MaxUses, uses AS Uses, created_at AS CreatedAt, expires_at AS ExpiresAt FROM enrollment_codes ORDER BY created_at DESC LIMIT @limit",
                new { limit }, cancellationToken: cancellationToken));
            return [.. rows.Select(r => new EnrollmentCodeView(r.Code, (int)r.MaxUses, (int)r.Uses, DateTimeOffset.FromUnixTimeMilliseconds(r.CreatedAt),
                r.ExpiresAt is { } e ? DateTimeOffset.FromUnixTimeMilliseconds(e) : null))];
        }, cancellationToken);

    public Task<IReadOnlyList<TrafficBucket>> TrafficAsync(DateTimeOffset since, TimeSpan bucket, CancellationToken cancellationToken) =>
        database.ReadAsync<IReadOnlyList<TrafficBucket>>(async c =>
        {
            var rows = await c.QueryAsync<TrafficRow>(new CommandDefinition(
                """
                SELECT (created_at / @bucket) * @bucket AS At, model AS Model, outcome AS Outcome, COUNT(*) AS Jobs, CAST(SUM(output_tokens) AS BIGINT) AS OutputTokens
                FROM jobs WHERE created_at >= @since GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
                """,
                new { since = since.ToUnixTimeMilliseconds(), bucket = (long)bucket.TotalMilliseconds }, cancellationToken: cancellationToken));
            return [.. rows.Select(r => new TrafficBucket(DateTimeOffset.FromUnixTimeMilliseconds(r.At), r.Model, r.Outcome, r.Jobs, r.OutputTokens))];
        }, cancellationToken);

    public Task<IReadOnlyList<ErrorCount>> ErrorsAsync(DateTimeOffset since, CancellationToken cancellationToken) =>
        database.ReadAsync<IReadOnlyList<ErrorCount>>(async c =>
        {
            var rows = await c.QueryAsync<ErrorRow>(new CommandDefinition(
                """
                SELECT COALESCE(error_code, outcome) AS Code, COUNT(*) AS Jobs FROM jobs
                WHERE created_at >= @since AND outcome <> 'completed' GROUP BY COALESCE(error_code, outcome) ORDER BY 2 DESC
                """,
                new { since = since.ToUnixTimeMilliseconds() }, cancellationToken: cancellationToken));
            return [.. rows.Select(r => new ErrorCount(r.Code, r.Jobs))];
        }, cancellationToken);

    public Task<IReadOnlyList<ProviderTraffic>> ProviderTrafficAsync(DateTimeOffset since, CancellationToken cancellationToken) =>
        database.ReadAsync<IReadOnlyList<ProviderTraffic>>(async c =>
        {
            var rows = await c.QueryAsync<ProviderTrafficRow>(new CommandDefinition(
                """
                SELECT provider_id AS ProviderId, COUNT(*) AS Jobs,
                       CAST(COALESCE(AVG(first_byte_at - created_at), 0) AS DOUBLE PRECISION) AS AvgFirstByteMs,
                       CAST(COALESCE(MAX(first_byte_at - created_at), 0) AS BIGINT) AS MaxFirstByteMs,
                       CAST(SUM(CASE WHEN outcome = 'completed' THEN 0 ELSE 1 END) AS BIGINT) AS Failed,
                       CAST(SUM(output_tokens) AS BIGINT) AS OutputTokens
                FROM jobs WHERE created_at >= @since AND provider_id IS NOT NULL GROUP BY provider_id
                """,
                new { since = since.ToUnixTimeMilliseconds() }, cancellationToken: cancellationToken));
            return [.. rows.Select(r => new ProviderTraffic(r.ProviderId, r.Jobs, r.AvgFirstByteMs, r.MaxFirstByteMs, r.Failed, r.OutputTokens))];
        }, cancellationToken);

    public Task<IReadOnlyList<BalanceMovement>> MovementsAsync(string account, int limit, CancellationToken cancellationToken) =>
        database.ReadAsync<IReadOnlyList<BalanceMovement>>(async c =>
        {
            // A request moves a balance twice (reserve, then settle or release): one line per reference, netted. Only
            // balance accounts' entries are indexed by account (ledger_entries_balance_from/_to); the substr terms repeat
            // those indexes' conditions so both dialects use them.
            if (!account.StartsWith(LedgerAccounts.BalancePrefix, StringComparison.Ordinal))
            {
                throw new ArgumentException($"'{account}' is not a balance account", nameof(account));
            }

            var rows = await c.QueryAsync<MovementRow>(new CommandDefinition(
                """
                SELECT reference AS Reference, MIN(event) AS Event, MAX(at) AS At, MAX(id) AS LastId,
                       CAST(SUM(CASE WHEN to_account = @account THEN amount_msat ELSE -amount_msat END) AS BIGINT) AS Amount
                FROM (
                    SELECT id, at, event, reference, to_account, amount_msat FROM ledger_entries WHERE to_account = @account AND substr(to_account, 1, 8) = 'balance:'
                    UNION ALL
                    SELECT id, at, event, reference, to_account, amount_msat FROM ledger_entries WHERE from_account = @account AND substr(from_account, 1, 8) = 'balance:'
                ) moves GROUP BY reference ORDER BY MAX(id) DESC LIMIT @limit
                """,
                new { account, limit }, cancellationToken: cancellationToken));
            return [.. rows.Select(r => new BalanceMovement(DateTimeOffset.FromUnixTimeMilliseconds(r.At), r.Event, r.Reference, r.Amount))];
        }, cancellationToken);

    private sealed class MoneyRow
    {
        public long At { get; set; }
        public long Received { get; set; }
        public long Spent { get; set; }
        public long Fee { get; set; }
        public long Refunded { get; set; }
        public long PaidOut { get; set; }
    }

    private sealed class DenominationRow
    {
        public string KeysetId { get; set; } = "";
        public long Amount { get; set; }
        public long Count { get; set; }
    }

    private sealed class QuoteRow
    {
        public string Kind { get; set; } = "";
        public string Id { get; set; } = "";
        public string State { get; set; } = "";
        public long Amount { get; set; }
        public string Unit { get; set; } = "";
        public long CreatedAt { get; set; }
        public long ExpiresAt { get; set; }
    }

    private sealed class EntryRow
    {
        public long At { get; set; }
        public string Account { get; set; } = "";
        public long Amount { get; set; }
        public string Reference { get; set; } = "";
        public string Event { get; set; } = "";
    }

    private sealed class AccountRow
    {
        public string Account { get; set; } = "";
        public long Credited { get; set; }
        public long Debited { get; set; }
    }

    private sealed class CodeRow
    {
        public string Code { get; set; } = "";
        public long MaxUses { get; set; }
        public long Uses { get; set; }
        public long CreatedAt { get; set; }
        public long? ExpiresAt { get; set; }
    }

    private sealed class TrafficRow
    {
        public long At { get; set; }
        public string Model { get; set; } = "";
        public string Outcome { get; set; } = "";
        public long Jobs { get; set; }
        public long OutputTokens { get; set; }
    }

    private sealed class ErrorRow
    {
        public string Code { get; set; } = "";
        public long Jobs { get; set; }
    }

    private sealed class ProviderTrafficRow
    {
        public string ProviderId { get; set; } = "";
        public long Jobs { get; set; }
        public double AvgFirstByteMs { get; set; }
        public long MaxFirstByteMs { get; set; }
        public long Failed { get; set; }
        public long OutputTokens { get; set; }
    }

    private sealed class MovementRow
    {
        public string Reference { get; set; } = "";
        public string Event { get; set; } = "";
        public long At { get; set; }
        public long LastId { get; set; }
        public long Amount { get; set; }
    }
}
