using Coinop.Storage.Jobs;

namespace Coinop.Storage.Tests.Jobs;

public class JobRecordStoreTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);

    private static JobRecord Job(Guid id, int minutes, JobOutcome outcome = JobOutcome.Completed, long? cost = null) => new(
        id, "llama3", "openai", "chat/completions", "pabc", 2, Now.AddMinutes(minutes), Now.AddMinutes(minutes).AddMilliseconds(40),
        Now.AddMinutes(minutes).AddSeconds(2), 12, 34, outcome, outcome == JobOutcome.Failed ? "backend_timeout" : null, cost);

    [Theory]
    [MemberData(nameof(Stores.Dialects), MemberType = typeof(Stores))]
    public async Task A_batch_is_stored_whole_and_reads_back_field_for_field(SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var store = await Stores.CreateAsync(dialect, ct);
        var jobs = new JobRecordStore(store.Database);
        var a = Job(Guid.NewGuid(), 0, cost: 1234);
        var b = Job(Guid.NewGuid(), 1, JobOutcome.Failed) with { ProviderId = null, FirstByteAt = null };

        await jobs.AddAsync([a, b], ct);

        Assert.Equal(a, await jobs.FindAsync(a.Id, ct));
        Assert.Equal(b, await jobs.FindAsync(b.Id, ct));
        Assert.Equal([b.Id, a.Id], (await jobs.ListRecentAsync(10, ct)).Select(j => j.Id));
    }

    [Theory]
    [MemberData(nameof(Stores.Dialects), MemberType = typeof(Stores))]
    public async Task Text_of_any_script_and_length_reads_back_as_written(SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var store = await Stores.CreateAsync(dialect, ct);
        var jobs = new JobRecordStore(store.Database);
        // SQLite binds short text from a stack buffer and long text from a rented one: both, with multi-byte characters.
        var a = Job(Guid.NewGuid(), 0, JobOutcome.Failed) with { Model = "modèle-日本語-🚀", ErrorCode = new string('é', 300) + "🚀" };
        var b = Job(Guid.NewGuid(), 1) with { Model = new string('m', 255), ProviderId = "p" + new string('ü', 200), CostMsat = 0 };

        await jobs.AddAsync([a, b], ct);

        Assert.Equal(a, await jobs.FindAsync(a.Id, ct));
        Assert.Equal(b, await jobs.FindAsync(b.Id, ct));
    }

    [Theory]
    [MemberData(nameof(Stores.Dialects), MemberType = typeof(Stores))]
    public async Task A_retried_batch_does_not_duplicate_or_overwrite_records(SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var store = await Stores.CreateAsync(dialect, ct);
        var jobs = new JobRecordStore(store.Database);
        var a = Job(Guid.NewGuid(), 0);

        await jobs.AddAsync([a], ct);
        await jobs.AddAsync([a with { OutputTokens = 999 }, Job(Guid.NewGuid(), 1)], ct);

        Assert.Equal(34, (await jobs.FindAsync(a.Id, ct))!.OutputTokens);
        Assert.Equal(2, (await jobs.ListRecentAsync(10, ct)).Count);
    }
}
