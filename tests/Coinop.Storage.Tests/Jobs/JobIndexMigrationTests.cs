using Coinop.Storage.Jobs;
using Coinop.Storage.Reports;
using Dapper;

namespace Coinop.Storage.Tests.Jobs;

/// <summary>
/// Migration 0102 drops the job records' provider index (nothing reads jobs by provider) under existing records: every
/// record and every report over them reads the same afterwards, and the per-provider report still reads a window of
/// time through jobs_created_at.
/// </summary>
public class JobIndexMigrationTests
{
    private const long Before = 101;
    private static readonly DateTimeOffset Now = new(2026, 12, 6, 12, 0, 0, TimeSpan.Zero);

    private static JobRecord Job(int minutes, string? provider, JobOutcome outcome, long output) => new(
        Guid.CreateVersion7(Now.AddMinutes(minutes)), minutes % 2 == 0 ? "llama3" : "qwen", "openai", "/v1/chat/completions",
        provider, 1, Now.AddMinutes(minutes), provider is null ? null : Now.AddMinutes(minutes).AddMilliseconds(10 + minutes),
        Now.AddMinutes(minutes).AddSeconds(1), 12, output, outcome, outcome == JobOutcome.Failed ? "backend_timeout" : null, null);

    [Theory]
    [MemberData(nameof(Stores.Dialects), MemberType = typeof(Stores))]
    public async Task Existing_job_records_and_their_reports_read_the_same_after_the_migration(SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var store = await Stores.CreateAsync(dialect, Before, ct);
        var db = store.Database;
        var jobs = new JobRecordStore(db);
        var reports = new MarketReportStore(db);
        List<JobRecord> records =
        [
            .. Enumerable.Range(0, 30).Select(i => Job(i, i % 3 == 0 ? "p1" : i % 3 == 1 ? "p2" : null,
                i % 4 == 0 ? JobOutcome.Failed : JobOutcome.Completed, 10 + i)),
        ];
        await jobs.AddAsync(records, ct);
        Assert.Contains("jobs_provider", await IndexesAsync(db, ct));

        var since = Now.AddMinutes(10);
        var recent = await jobs.ListRecentAsync(100, ct);
        var traffic = await reports.TrafficAsync(since, TimeSpan.FromMinutes(5), ct);
        var errors = await reports.ErrorsAsync(since, ct);
        var providers = await reports.ProviderTrafficAsync(since, ct);
        Assert.Equal(2, providers.Count);

        Assert.Equal(1, await Migrator.MigrateAsync(db, ct));

        Assert.Equal(["jobs_created_at"], await IndexesAsync(db, ct));
        Assert.Equal(recent, await jobs.ListRecentAsync(100, ct));
        Assert.Equal(records.OrderByDescending(r => r.CreatedAt), recent);
        Assert.Equal(records[7], await jobs.FindAsync(records[7].Id, ct));
        Assert.Equal(traffic, await reports.TrafficAsync(since, TimeSpan.FromMinutes(5), ct));
        Assert.Equal(errors, await reports.ErrorsAsync(since, ct));
        Assert.Equal(
            providers.OrderBy(p => p.ProviderId),
            (await reports.ProviderTrafficAsync(since, ct)).OrderBy(p => p.ProviderId));

        // A record already stored is still kept as it was (the id stays unique).
        await jobs.AddAsync([records[0] with { OutputTokens = 999 }], ct);
        Assert.Equal(records[0], await jobs.FindAsync(records[0].Id, ct));

        if (dialect == SqlDialect.Sqlite)
        {
            // The per-provider report reads its window through the time index, not the whole table.
            var plan = await db.ReadAsync(async c => string.Join("\n", (await c.QueryAsync(
                "EXPLAIN QUERY PLAN SELECT provider_id, COUNT(*) FROM jobs WHERE created_at >= @since AND provider_id IS NOT NULL GROUP BY provider_id", new { since = since.ToUnixTimeMilliseconds() }))
                .Select(r => (string)r.detail)), ct);
            Assert.Contains("jobs_created_at", plan);
        }
    }

    private static Task<List<string>> IndexesAsync(Database db, CancellationToken ct) =>
        db.ReadAsync(async c => (await c.QueryAsync<string>(db.Dialect == SqlDialect.Sqlite
            ? "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'jobs' AND name NOT LIKE 'sqlite_autoindex%' ORDER BY name"
            : "SELECT indexname FROM pg_indexes WHERE tablename = 'jobs' AND indexname <> 'jobs_pkey' ORDER BY indexname")).ToList(), ct);
}
