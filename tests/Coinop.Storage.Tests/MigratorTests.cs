using Coinop.Storage.Meta;

namespace Coinop.Storage.Tests;

public class MigratorTests
{
    [Theory]
    [MemberData(nameof(Stores.Dialects), MemberType = typeof(Stores))]
    public async Task Migrations_apply_once_and_the_schema_works(SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var store = await Stores.CreateAsync(dialect, ct);
        Assert.Equal(0, await Migrator.MigrateAsync(store.Database, ct)); // already at the newest version

        var meta = new MarketMetaStore(store.Database);
        Assert.Equal("a", await meta.GetOrAddAsync("k", "a", ct));
        Assert.Equal("a", await meta.GetOrAddAsync("k", "b", ct)); // the first value wins
        await meta.SetAsync("k", "c", ct);
        Assert.Equal("c", await meta.GetAsync("k", ct));
    }

    [Fact]
    public async Task Both_dialects_define_the_same_migrations()
    {
        var names = typeof(Migrator).Assembly.GetManifestResourceNames()
            .Where(n => n.EndsWith(".sql", StringComparison.Ordinal))
            .Select(n => n.Split('.')[^3..^1])
            .ToList();
        var sqlite = names.Where(n => n[0] == "Sqlite").Select(n => n[1]).Order().ToList();
        var postgres = names.Where(n => n[0] == "Postgres").Select(n => n[1]).Order().ToList();
        Assert.NotEmpty(sqlite);
        Assert.Equal(sqlite, postgres);
        await Task.CompletedTask;
    }
}
