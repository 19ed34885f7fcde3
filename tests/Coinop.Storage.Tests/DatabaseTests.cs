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
}
