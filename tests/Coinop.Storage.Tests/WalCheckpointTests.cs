using Coinop.TestKit;
using Dapper;

namespace Coinop.Storage.Tests;

/// <summary>
/// With the writers' own checkpoints pushed far out, <see cref="Database.CheckpointAsync"/> keeps the WAL small: it copies
/// every committed page into the database file and the next writer starts the WAL over, so many writes do not grow it.
/// </summary>
public class WalCheckpointTests
{
    [Fact]
    public async Task Checkpoints_in_the_background_keep_the_wal_from_growing_while_writers_never_checkpoint()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDirectory("coinop-wal");
        var path = Path.Combine(dir.Path, "market.db");
        await using var db = Database.Sqlite(path, walAutocheckpointPages: 1_000_000);
        await Migrator.MigrateAsync(db, ct);
        await db.WriteAsync((c, t) => c.ExecuteAsync("CREATE TABLE filler (id INTEGER PRIMARY KEY, data BLOB NOT NULL)", transaction: t), ct);
        await db.CheckpointAsync(ct);

        long firstRound = 0;
        var commitsBefore = db.Commits;
        for (var round = 0; round < 10; round++)
        {
            for (var i = 0; i < 50; i++)
            {
                await db.WriteAsync((c, t) => c.ExecuteAsync("INSERT INTO filler (data) VALUES (randomblob(3000))", transaction: t), ct);
            }

            var checkpoint = await db.CheckpointAsync(ct);
            Assert.NotNull(checkpoint);
            Assert.False(checkpoint.Busy);
            Assert.True(checkpoint.WalPages >= 50, $"round {round}: {checkpoint.WalPages} pages in the WAL");
            Assert.Equal(checkpoint.WalPages, checkpoint.CheckpointedPages);
            firstRound = round == 0 ? new FileInfo(path + "-wal").Length : firstRound;
        }

        Assert.Equal(commitsBefore + 500, db.Commits);
        // Ten rounds of writes, and the WAL file is no larger than after the first: each round reused it from the start.
        // (Without the checkpoints it would hold all ten rounds' pages.)
        Assert.True(new FileInfo(path + "-wal").Length <= firstRound * 1.2, $"WAL {new FileInfo(path + "-wal").Length} bytes, {firstRound} after one round");
        Assert.Equal(500, await db.ReadAsync(c => c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM filler"), ct));
    }

    [Fact]
    public async Task PostgreSQL_has_no_wal_checkpoint_to_run()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var store = await Stores.CreateAsync(SqlDialect.Postgres, ct);
        Assert.Null(await store.Database.CheckpointAsync(ct));
    }
}
