using System.Diagnostics;
using System.Globalization;
using Coinop.Storage;
using Coinop.Storage.Ledger;

namespace Coinop.Bench;

/// <summary>
/// `ledger [ROUNDS] [REQUESTS] [PRELOAD]`: what a balance-key request costs the store, in process (no HTTP): the
/// reserve and the settle transactions a paid request runs (the statements <c>RequestHolds</c> runs: the balance into a
/// hold, then the hold closed with the charge split between provider and fee and the rest back to the balance), on a
/// SQLite file, one request after another. Three stores side by side, rounds interleaved (order rotating): the schema
/// before migration 0100 with SQLite's own checkpoints (every 1,000 pages, by the committing writer); the schema after
/// it; and the schema after it with the writers' checkpoints pushed to 4,096 pages and a background checkpointer every
/// 250 ms, as the market runs it; and the last with the reservation kept in process (<c>BalanceReservations</c>: a read
/// in the writer's turn, no transaction) and the settle debiting the balance directly, as a single-node SQLite market
/// runs a balance-key request now. Each store first takes PRELOAD requests, so its indexes have some depth. With PACE_MS
/// the requests are spaced that far apart (`ledger [ROUNDS] [REQUESTS] [PRELOAD] [PACE_MS]`).
/// </summary>
public static class LedgerStoreLoad
{
    private sealed record Setup(string Name, long UpToVersion, int AutocheckpointPages, bool Background, bool InProcess = false);

    /// <param name="paceMs">Pause between requests (0: back to back). At 10 ms, as at 100 requests/s, each request finds the
    /// CPU's caches cold, as it does in the market.</param>
    public static async Task RunAsync(int rounds, int requests, int preload, int paceMs = 0)
    {
        Setup[] setups =
        [
            new("before (schema 0095, writer checkpoints every 1000 pages)", 95, Database.DefaultWalAutocheckpointPages, false),
            new("lean journal (0100), writer checkpoints", long.MaxValue, Database.DefaultWalAutocheckpointPages, false),
            new("lean journal + background checkpoints", long.MaxValue, 4096, true),
            new("reservation in process + background checkpoints", long.MaxValue, 4096, true, InProcess: true),
        ];
        var dir = Directory.CreateTempSubdirectory("coinop-ledger-bench-");
        try
        {
            var stores = new List<Store>();
            foreach (var setup in setups)
            {
                var db = Database.Sqlite(Path.Combine(dir.FullName, stores.Count + ".db"), setup.AutocheckpointPages);
                await Migrator.MigrateAsync(db, setup.UpToVersion, CancellationToken.None);
                await FundAsync(db);
                stores.Add(new Store(setup, db, [], [], new BalanceReservations()));
            }

            using var stop = new CancellationTokenSource();
            var checkpointers = stores.Where(s => s.Setup.Background).Select(s => CheckpointLoopAsync(s.Db, stop.Token)).ToList();
            var id = 0;
            foreach (var store in stores)
            {
                for (var i = 0; i < preload; i++)
                {
                    await RequestAsync(store, id++);
                }
            }

            for (var round = 0; round < rounds; round++)
            {
                for (var k = 0; k < stores.Count; k++)
                {
                    var store = stores[(k + round) % stores.Count];
                    using var process = Process.GetCurrentProcess();
                    var cpu = process.TotalProcessorTime;
                    var latencies = new double[requests];
                    for (var i = 0; i < requests; i++)
                    {
                        var started = Stopwatch.GetTimestamp();
                        await RequestAsync(store, id++);
                        latencies[i] = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                        if (paceMs > 0)
                        {
                            await Task.Delay(paceMs);
                        }
                    }

                    process.Refresh();
                    store.Latencies.AddRange(latencies);
                    var cpuMs = (process.TotalProcessorTime - cpu).TotalMilliseconds / requests;
                    store.Cpu.Add(cpuMs);
                    Array.Sort(latencies);
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"round {round + 1} {store.Setup.Name}: p50 {latencies[requests / 2]:0.000} ms, p99 {latencies[requests * 99 / 100]:0.000} ms, CPU {cpuMs:0.000} ms a request"));
                }
            }

            await stop.CancelAsync();
            await Task.WhenAll(checkpointers);
            foreach (var store in stores)
            {
                var all = store.Latencies.Order().ToArray();
                var cpu = store.Cpu.Order().ToArray();
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{store.Setup.Name}: reserve + settle p50 {all[all.Length / 2]:0.000} ms, p90 {all[all.Length * 9 / 10]:0.000}, p99 {all[all.Length * 99 / 100]:0.000}, " +
                    $"max {all[^1]:0.0}; process CPU a request median {cpu[cpu.Length / 2]:0.000} ms ({cpu[0]:0.000}-{cpu[^1]:0.000}); WAL file {new FileInfo(DbPath(dir, stores.IndexOf(store)) + "-wal").Length / 1024} KiB"));
                await store.Db.DisposeAsync();
            }
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    private sealed record Store(Setup Setup, Database Db, List<double> Latencies, List<double> Cpu, BalanceReservations Reservations);

    private static Task RequestAsync(Store store, int n) =>
        store.Setup.InProcess ? InProcessRequestAsync(store.Db, store.Reservations, n) : RequestAsync(store.Db, n);

    /// <summary>One request as <c>RequestHolds</c> runs it with the reservation kept in process: a read in the writer's turn, one transaction.</summary>
    private static async Task InProcessRequestAsync(Database db, BalanceReservations reservations, int n)
    {
        var ledger = new LedgerStore(db, reservations);
        var id = Guid.CreateVersion7(Now.AddMilliseconds(n)).ToString();
        var now = Now.AddMilliseconds(n);
        if (!await db.UnderWriterAsync(async c => await ledger.PostedBalanceAsync(c, null, Balance, CancellationToken.None) is { } posted
                && reservations.TryReserve(id, Balance, 20_000, posted, now), CancellationToken.None))
        {
            throw new InvalidOperationException("the reservation was refused");
        }

        await db.WriteAsync(async (c, t) =>
        {
            var taken = reservations.Take(id) ?? throw new InvalidOperationException("the reservation was not held");
            await ledger.PostAsync(c, t, "settle", id,
            [
                new(taken.Account, LedgerAccounts.Spent, 3_000),
                new(LedgerAccounts.Spent, LedgerAccounts.Provider("p1"), 2_700),
                new(LedgerAccounts.Spent, LedgerAccounts.Fee, 300),
            ], now, CancellationToken.None);
        }, CancellationToken.None);
    }

    private static string DbPath(DirectoryInfo dir, int index) => Path.Combine(dir.FullName, index + ".db");

    private const string Balance = "balance:kbench";

    private static readonly DateTimeOffset Now = DateTimeOffset.FromUnixTimeMilliseconds(1_800_000_000_000);

    private static Task FundAsync(Database db) =>
        db.WriteAsync((c, t) => new LedgerStore(db).PostAsync(c, t, "payment", "fund", [new(LedgerAccounts.Received, Balance, 1_000_000_000_000)], Now, CancellationToken.None),
            CancellationToken.None);

    /// <summary>One request's two transactions, as <c>RequestHolds.ReserveAsync</c> and <c>RequestHolds.SettleAsync</c> run them.</summary>
    private static async Task RequestAsync(Database db, int n)
    {
        var ledger = new LedgerStore(db);
        var holds = new PaymentHoldStore(db);
        var id = Guid.CreateVersion7(Now.AddMilliseconds(n)).ToString();
        var now = Now.AddMilliseconds(n);
        await db.WriteAsync(async (c, t) =>
        {
            await ledger.PostAsync(c, t, "reserve", id, [new LedgerTransfer(Balance, LedgerAccounts.Holds, 20_000)], now, CancellationToken.None);
            await holds.InsertAsync(c, t, new PaymentHold(id, "node-bench", HoldPayer.Balance, Balance, 20_000, HoldState.Held, now), CancellationToken.None);
        }, CancellationToken.None);
        await db.WriteAsync(async (c, t) =>
        {
            var hold = await holds.TryCloseAsync(c, t, id, new HoldOutcome(HoldState.Settled, 3_000, "p1"), now, CancellationToken.None)
                ?? throw new InvalidOperationException("the hold was not held");
            await ledger.PostAsync(c, t, "settle", id,
            SettleTransfers(hold), now, CancellationToken.None);
        }, CancellationToken.None);
    }

    /// <summary>What a paid request's settle posts: 3 sat charged, 90% to the provider, 10% fee, the rest back.</summary>
    internal static LedgerTransfer[] SettleTransfers(PaymentHold hold) =>
    [
        new(LedgerAccounts.Holds, LedgerAccounts.Spent, 3_000),
        new(LedgerAccounts.Spent, LedgerAccounts.Provider("p1"), 2_700),
        new(LedgerAccounts.Spent, LedgerAccounts.Fee, 300),
        new(LedgerAccounts.Holds, hold.ReleaseTo, hold.AmountMsat - 3_000),
    ];

    /// <summary>The market's WalCheckpointer, reduced to its loop: every 250 ms, one PASSIVE checkpoint.</summary>
    private static async Task CheckpointLoopAsync(Database db, CancellationToken stop)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(250), TimeProvider.System);
        try
        {
            while (await timer.WaitForNextTickAsync(stop))
            {
                await db.CheckpointAsync(stop);
            }
        }
        catch (OperationCanceledException)
        {
            // Done.
        }
    }
}
