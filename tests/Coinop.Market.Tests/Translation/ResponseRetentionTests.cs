using System.Text.Json;
using Coinop.Market.Inference.Responses;
using Coinop.Storage;
using Coinop.Storage.Responses;
using Coinop.TestKit;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Coinop.Market.Tests.Translation;

/// <summary>Stored responses live for the retention, on a real store, with time from a fake clock.</summary>
public class ResponseRetentionTests
{
    [Theory]
    [MemberData(nameof(TestMarket.Dialects), MemberType = typeof(TestMarket))]
    public async Task A_response_is_readable_within_retention_and_gone_after_it_and_pruned(SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDirectory("coinop-responses");
        string? pg = dialect == SqlDialect.Postgres ? await TestMarket.CreatePostgresDatabaseAsync() : null;
        await using var database = pg is null
            ? Database.Sqlite(Path.Combine(dir.Path, "market.db"))
            : Database.Postgres(new Npgsql.NpgsqlConnectionStringBuilder(PostgresServer.ConnectionString) { Database = pg }.ConnectionString);
        await Migrator.MigrateAsync(database, ct);
        var store = new ResponseStore(database);
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2030-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        var service = new ResponsesService(store, Options.Create(new ResponsesOptions { Retention = TimeSpan.FromMinutes(30) }), time, NullLogger<ResponsesService>.Instance);
        using var request = JsonDocument.Parse("""{"model":"m","input":"x"}""");
        var turn = new ResponsesTurn("resp_1", time.GetUtcNow(), "payer-a", [], "[{\"role\":\"user\",\"content\":\"x\"}]"u8.ToArray(), store: true, service);
        var draft = turn.NewDraft(request.RootElement, "m");
        draft.Add(ResponseItemKind.Message).Text.Append("hello");
        draft.Complete("stop", new(3, 1));

        await turn.SaveAsync(draft, ct);
        time.Advance(TimeSpan.FromMinutes(29));
        var within = await store.FindAsync("resp_1", time.GetUtcNow(), ct);
        time.Advance(TimeSpan.FromMinutes(2));
        var after = await store.FindAsync("resp_1", time.GetUtcNow(), ct);
        var pruned = await store.PruneAsync(time.GetUtcNow(), ct);

        Assert.NotNull(within);
        Assert.Equal("payer-a", within.Payer);
        using var conversation = JsonDocument.Parse(within.Conversation);
        Assert.Equal(["user", "assistant"], conversation.RootElement.EnumerateArray().Select(m => m.GetProperty("role").GetString()));
        Assert.Equal("hello", conversation.RootElement[1].GetProperty("content").GetString());
        Assert.Equal("completed", JsonDocument.Parse(within.Response).RootElement.GetProperty("status").GetString());
        Assert.Null(after);
        Assert.Equal(1, pruned);
        if (pg is not null)
        {
            await database.DisposeAsync();
            await Payments.PaidMarket.DropDatabaseAsync(pg);
        }
    }
}
