using Coinop.Storage.Meta;
using Dapper;

namespace Coinop.Storage.Tests;

public class DatabaseTests
{
    [Theory]
    [MemberData(nameof(Stores.Dialects), MemberType = typeof(Stores))]
    public async Task A_writer_that_must_wait_for_another_returns_to_its_caller_at_once_and_commits_after_it(SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var store = await Stores.CreateAsync(dialect, ct);
        var meta = new MarketMetaStore(store.Database);
        await meta.SetAsync("k", "start", ct);

        var holding = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var first = store.Database.WriteAsync(async (c, t) =>
        {
            await Set(c, t, "first");
            holding.SetResult();
            await release.Task;
        }, ct);
        await holding.Task.WaitAsync(TimeSpan.FromSeconds(30), ct);

        // The second writer conflicts with the first. Its call must not block this thread until the first is done
        // (SQLite's busy handler used to, on whatever pool thread made the call); it waits as a task.
        var second = store.Database.WriteAsync((c, t) => Set(c, t, "second"), ct);
        Assert.False(second.IsCompleted);

        release.SetResult();
        await Task.WhenAll(first, second).WaitAsync(TimeSpan.FromSeconds(30), ct);
        Assert.Equal("second", await meta.GetAsync("k", ct));

        Task Set(System.Data.Common.DbConnection c, System.Data.Common.DbTransaction t, string value) =>
            c.ExecuteAsync(new CommandDefinition("UPDATE market_meta SET value = @value WHERE key = 'k'", new { value }, t, cancellationToken: ct));
    }

    /// <summary>
    /// SQLite keeps one writer connection and its statements prepared across transactions: a write that fails half
    /// way (after a kept statement ran) leaves nothing behind, and the next writes through the same kept statement
    /// see only committed state and commit normally.
    /// </summary>
    [Theory]
    [MemberData(nameof(Stores.Dialects), MemberType = typeof(Stores))]
    public async Task A_failed_write_leaves_nothing_behind_on_the_kept_writer_and_its_prepared_statements(SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var store = await Stores.CreateAsync(dialect, ct);
        var meta = new MarketMetaStore(store.Database);
        await meta.SetAsync("k", "start", ct);
        var database = store.Database;

        await Assert.ThrowsAsync<InvalidOperationException>(() => database.WriteAsync(async (c, t) =>
        {
            Assert.Equal(1, await SetAsync(c, t, "half"));
            throw new InvalidOperationException("the work fails after writing");
        }, ct));
        Assert.Equal("start", await meta.GetAsync("k", ct));

        for (var i = 0; i < 3; i++)
        {
            var value = "v" + i;
            await database.WriteAsync(async (c, t) => Assert.Equal(1, await SetAsync(c, t, value)), ct);
            Assert.Equal(value, await meta.GetAsync("k", ct));
        }

        // A statement that fails (a constraint) does not poison its kept command for the next transaction.
        await Assert.ThrowsAnyAsync<System.Data.Common.DbException>(() => database.WriteAsync(async (c, t) =>
        {
            using var insert = database.Statement(c, t, "INSERT INTO market_meta (key, value) VALUES (@key, @value)");
            await insert.Set("@key", "k").Set("@value", "duplicate").ExecuteAsync(ct);
        }, ct));
        await database.WriteAsync(async (c, t) => Assert.Equal(1, await SetAsync(c, t, "after")), ct);
        Assert.Equal("after", await meta.GetAsync("k", ct));

        async Task<int> SetAsync(System.Data.Common.DbConnection c, System.Data.Common.DbTransaction t, string value)
        {
            using var update = database.Statement(c, t, "UPDATE market_meta SET value = @value WHERE key = 'k'");
            return await update.Set("@value", value).ExecuteAsync(ct);
        }
    }
}
