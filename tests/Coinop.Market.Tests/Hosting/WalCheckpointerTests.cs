using System.Diagnostics.Metrics;
using Coinop.Market.Hosting;
using Coinop.Storage;
using Coinop.TestKit;
using Dapper;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Coinop.Market.Tests.Hosting;

/// <summary>
/// The background checkpointer: on its timer (fake time here) it checkpoints the WAL the writers no longer checkpoint
/// themselves, only when something was committed since its last complete checkpoint, and counts it on its meter.
/// </summary>
public sealed class WalCheckpointerTests : IAsyncDisposable
{
    private readonly ServiceProvider _services = new ServiceCollection().AddMetrics().BuildServiceProvider();
    private readonly TempDirectory _dir = new("coinop-walcheckpointer");

    public async ValueTask DisposeAsync()
    {
        await _services.DisposeAsync();
        _dir.Dispose();
    }

    [Fact]
    public async Task Each_tick_with_new_commits_checkpoints_the_whole_wal_and_a_tick_without_skips()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var db = await DatabaseAsync(ct);
        var checkpointer = new WalCheckpointer(db, new MarketOptions(), new StorageMetrics(_services.GetRequiredService<IMeterFactory>()), new FakeTimeProvider(),
            NullLogger<WalCheckpointer>.Instance);

        await WriteAsync(db, 20, ct);
        var first = await checkpointer.CheckpointOnceAsync(ct);
        Assert.NotNull(first);
        Assert.True(first.WalPages >= 20, $"{first.WalPages} pages");
        Assert.Equal(first.WalPages, first.CheckpointedPages);

        Assert.Null(await checkpointer.CheckpointOnceAsync(ct)); // nothing committed since: no checkpoint at all

        await WriteAsync(db, 5, ct);
        var second = await checkpointer.CheckpointOnceAsync(ct);
        Assert.NotNull(second);
        Assert.InRange(second.WalPages, 5, first.WalPages - 1); // the writers started the WAL over after the first
        Assert.Equal(second.WalPages, second.CheckpointedPages);
    }

    [Fact]
    public async Task The_timer_runs_the_checkpoints_and_counts_them()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var db = await DatabaseAsync(ct);
        var time = new FakeTimeProvider();
        var options = new MarketOptions { WalCheckpointInterval = TimeSpan.FromSeconds(1) };
        var counted = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        var factory = _services.GetRequiredService<IMeterFactory>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            // This test's meter only: markets of other tests in this process count their own checkpoints.
            if (ReferenceEquals(instrument.Meter.Scope, factory) && instrument.Meter.Name == StorageMetrics.MeterName && instrument.Name == "coinop.storage.wal.checkpointed")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, pages, _, _) => counted.TrySetResult(pages));
        listener.Start();
        var checkpointer = new WalCheckpointer(db, options, new StorageMetrics(factory), time,
            NullLogger<WalCheckpointer>.Instance);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var loop = checkpointer.RunAsync(stop.Token);
        await WriteAsync(db, 10, ct);
        Assert.False(counted.Task.IsCompleted); // no tick yet
        time.Advance(options.WalCheckpointInterval);
        Assert.True(await counted.Task.WaitAsync(TimeSpan.FromSeconds(30), ct) >= 10);
        await stop.CancelAsync();
        await loop;
    }

    private async Task<Database> DatabaseAsync(CancellationToken ct)
    {
        // The writers' own checkpoints pushed out of reach, as the market does (further here, so none can interfere).
        var db = Database.Sqlite(Path.Combine(_dir.Path, "market.db"), walAutocheckpointPages: 1_000_000);
        await Migrator.MigrateAsync(db, ct);
        await db.WriteAsync((c, t) => c.ExecuteAsync("CREATE TABLE filler (id INTEGER PRIMARY KEY, data BLOB NOT NULL)", transaction: t), ct);
        await db.CheckpointAsync(ct);
        return db;
    }

    private static async Task WriteAsync(Database db, int commits, CancellationToken ct)
    {
        for (var i = 0; i < commits; i++)
        {
            await db.WriteAsync((c, t) => c.ExecuteAsync("INSERT INTO filler (data) VALUES (randomblob(3000))", transaction: t), ct);
        }
    }
}
