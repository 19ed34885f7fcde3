using System.Text;
using Coinop.Core.Work;
using Coinop.Core.Workloads;
using Coinop.Storage.Work;
using Coinop.Storage.Workloads;
using Microsoft.Extensions.Time.Testing;
using NSec.Cryptography;

namespace Coinop.Storage.Tests.Workloads;

public class WorkloadStoreTests
{
    private static readonly WorkloadTimings Timings = WorkloadTimings.Default;
    private static readonly LeaseOwner A = new("provider-a", "boot-1");
    private static readonly LeaseOwner B = new("provider-b", "boot-1");
    private static readonly WorkloadTerms Terms = new(null, "c2VhbA==", 27.5m, 0);
    private static readonly Dictionary<string, decimal> Rates = new() { ["provider-a"] = 20.125m, ["provider-b"] = 7.375m };

    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 25, 12, 0, 0, TimeSpan.Zero));

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static WorkloadSpec Spec(int standbys = 1) =>
        new("sh", ["-c", "echo hi"], 0.5, 128, TimeSpan.FromHours(1), 8080, RestartPolicy.OnFailure(2), standbys, Checkpointed: true);

    private Workload Submitted(string id, int standbys = 1) =>
        WorkloadMachine.Submit(id, Spec(standbys), "provider-a", standbys == 1 ? ["provider-b"] : [], _time.GetUtcNow()).Next;

    /// <summary>A workload in the store whose kernel item is claimed by provider A at epoch 1, as the supervisor leaves it.</summary>
    private async Task<(WorkloadStore Workloads, WorkStore Work, StoredWorkload Stored)> SubmitAsync(TestStore store, string id)
    {
        var workloads = new WorkloadStore(store.Database, _time);
        var work = new WorkStore(store.Database, _time);
        Assert.True((await work.RegisterAsync(new WorkRegistration(id, WorkKinds.Workload, RecoveryDisposition.Rerunnable), Ct)).Accepted);
        Assert.Equal(1, (await work.ClaimAsync(id, A, Timings.CopyLease, Ct)).Item!.Fence);
        Assert.True(await workloads.InsertAsync(Submitted(id), Terms, new Dictionary<string, string> { ["provider-a"] = "a-key", ["provider-b"] = "b-key" }, Rates, Ct));
        return (workloads, work, (await workloads.FindAsync(id, Ct))!);
    }

    [Theory]
    [MemberData(nameof(Stores.Dialects), MemberType = typeof(Stores))]
    public async Task A_workload_round_trips_with_its_terms_history_standbys_sealed_keys_and_rates(SqlDialect dialect)
    {
        await using var store = await Stores.CreateAsync(dialect, Ct);
        var (workloads, _, stored) = await SubmitAsync(store, "w1");

        var expected = Submitted("w1");
        Assert.Equal(1, stored.Version);
        Assert.Equal(Terms, stored.Terms);
        Assert.Equal(Rates, stored.Rates);
        Assert.Equal(expected.Spec with { Args = stored.Workload.Spec.Args }, stored.Workload.Spec);
        Assert.Equal(expected.Spec.Args, stored.Workload.Spec.Args);
        Assert.Equal(expected.History, stored.Workload.History);
        Assert.Equal(expected.Standbys, stored.Workload.Standbys);
        Assert.Equal((expected.State, expected.Provider, expected.Epoch, expected.PaidUntil), (stored.Workload.State, stored.Workload.Provider, stored.Workload.Epoch, stored.Workload.PaidUntil));
        Assert.Equal("b-key", await workloads.SealedKeyAsync("w1", "provider-b", Ct));
        Assert.Null(await workloads.SealedKeyAsync("w1", "provider-c", Ct));
        Assert.Equal(["provider-a", "provider-b"], await workloads.KeyHoldersAsync("w1", Ct));
        Assert.False(await workloads.InsertAsync(Submitted("w1"), Terms, new Dictionary<string, string>(), Rates, Ct));
        Assert.Null(await workloads.FindAsync("nope", Ct));
    }

    [Theory]
    [MemberData(nameof(Stores.Dialects), MemberType = typeof(Stores))]
    public async Task Saves_are_compare_and_set_append_history_and_never_touch_a_finished_workload(SqlDialect dialect)
    {
        await using var store = await Stores.CreateAsync(dialect, Ct);
        var (workloads, _, stored) = await SubmitAsync(store, "w2");

        _time.Advance(TimeSpan.FromSeconds(5));
        var live = WorkloadMachine.Apply(stored.Workload, new WorkloadInput.CopyHeartbeat("provider-a", 1), Timings, _time.GetUtcNow()).Next;
        var saved = await workloads.SaveAsync(stored, live, Terms, stored.Rates, Ct);
        Assert.NotNull(saved);
        Assert.Equal(2, saved.Version);

        // A second writer that read version 1 loses.
        var cancelled = WorkloadMachine.Apply(stored.Workload, new WorkloadInput.Cancel("other-node"), Timings, _time.GetUtcNow()).Next;
        Assert.Null(await workloads.SaveAsync(stored, cancelled, Terms, stored.Rates, Ct));

        var done = WorkloadMachine.Apply(saved.Workload, new WorkloadInput.Cancel("consumer"), Timings, _time.GetUtcNow()).Next;
        var finished = await workloads.SaveAsync(saved, done, Terms with { PaidMsat = 5 }, saved.Rates, Ct);
        Assert.NotNull(finished);
        var reread = (await workloads.FindAsync("w2", Ct))!;
        Assert.Equal(WorkloadState.Cancelled, reread.Workload.State);
        Assert.Equal(done.History, reread.Workload.History);
        Assert.Empty(reread.Workload.Standbys);
        Assert.Equal(Terms with { PaidMsat = 5 }, reread.Terms);

        // Even at the right version, a terminal row is never written again.
        Assert.Null(await workloads.SaveAsync(reread, reread.Workload with { State = WorkloadState.Live }, Terms, reread.Rates, Ct));
        Assert.Equal(WorkloadState.Cancelled, (await workloads.FindAsync("w2", Ct))!.Workload.State);
        Assert.Empty(await workloads.ListAsync(openOnly: true, 10, Ct));
        Assert.Single(await workloads.ListAsync(openOnly: false, 10, Ct));
    }

    [Theory]
    [MemberData(nameof(Stores.Dialects), MemberType = typeof(Stores))]
    public async Task A_provider_keeps_its_first_rate_and_a_hook_commits_or_rolls_back_with_the_save(SqlDialect dialect)
    {
        await using var store = await Stores.CreateAsync(dialect, Ct);
        var (workloads, _, stored) = await SubmitAsync(store, "w4");
        var next = stored.Workload with { PaidUntil = stored.Workload.PaidUntil.AddMinutes(1) };

        // A hook that fails (say, its payment is gone) takes the save with it.
        await Assert.ThrowsAsync<InvalidOperationException>(() => workloads.SaveAsync(stored, next, Terms with { PaidMsat = 9 },
            new Dictionary<string, decimal>(stored.Rates) { ["provider-c"] = 1m }, Ct, (c, t, w, ct) => throw new InvalidOperationException("no payment")));
        var unchanged = (await workloads.FindAsync("w4", Ct))!;
        Assert.Equal((1L, 0L, stored.Workload.PaidUntil), (unchanged.Version, unchanged.Terms.PaidMsat, unchanged.Workload.PaidUntil));
        Assert.Equal(Rates, unchanged.Rates);

        // One that succeeds writes in the same transaction; a re-placed provider keeps the rate it was first paid.
        Workload? hooked = null;
        var saved = await workloads.SaveAsync(stored, next, Terms with { PaidMsat = 9 },
            new Dictionary<string, decimal> { ["provider-a"] = 99m, ["provider-c"] = 1.5m }, Ct, (c, t, w, ct) =>
            {
                hooked = w;
                return Task.CompletedTask;
            });
        Assert.NotNull(saved);
        Assert.Equal(next, hooked);
        var expected = new Dictionary<string, decimal>(Rates) { ["provider-c"] = 1.5m };
        Assert.Equal(expected, saved.Rates);
        Assert.Equal(expected, (await workloads.FindAsync("w4", Ct))!.Rates);
    }

    [Theory]
    [MemberData(nameof(Stores.Dialects), MemberType = typeof(Stores))]
    public async Task Usage_checkpoints_and_receipts_land_only_from_the_copy_holding_the_fence(SqlDialect dialect)
    {
        await using var store = await Stores.CreateAsync(dialect, Ct);
        var (_, work, _) = await SubmitAsync(store, "w3");
        var usage = new WorkloadUsageStore(store.Database, _time);
        var checkpoints = new WorkloadCheckpointStore(store.Database, _time);
        var receipts = new WorkloadReceiptStore(store.Database, _time);
        using var key = Key.Create(SignatureAlgorithm.Ed25519);

        var first = new UsageRecord("w3", 1, 0, 1000, 0.5, 64, 10, 1);
        Assert.True(await usage.AddAsync("provider-a", first, first.Sign(key), Ct));
        Assert.False(await usage.AddAsync("provider-a", first, first.Sign(key), Ct)); // the same window twice
        Assert.False(await usage.AddAsync("provider-b", first with { WindowStart = 1000, WindowEnd = 2000 }, first.Sign(key), Ct)); // not the holder
        var checkpoint = await checkpoints.AddAsync("w3", 1, "provider-a", [1, 2, 3], "abc", Ct);
        Assert.NotNull(checkpoint);
        var data = await checkpoints.ReadAsync(checkpoint.Id, Ct);
        Assert.Equal([1, 2, 3], data!);
        Assert.Equal(checkpoint, await checkpoints.FindAsync(checkpoint.Id, Ct));
        Assert.True(await receipts.AddAsync("w3", 1, "provider-a", "sealed-1", Ct));

        // The epoch is revoked and granted to B: A is a revenant now, B writes at epoch 2.
        Assert.True((await work.RevokeAsync("w3", 1, "evicted", Ct)).Accepted);
        Assert.True((await work.GrantAsync("w3", 2, B, Timings.CopyLease, Ct)).Accepted);
        var late = first with { WindowStart = 1000, WindowEnd = 2000 };
        Assert.False(await usage.AddAsync("provider-a", late, late.Sign(key), Ct));
        Assert.Null(await checkpoints.AddAsync("w3", 1, "provider-a", [9], "x", Ct));
        Assert.False(await receipts.AddAsync("w3", 1, "provider-a", "sealed-late", Ct));
        var second = new UsageRecord("w3", 2, 5000, 6000, 0.4, 60, 0, 1);
        Assert.True(await usage.AddAsync("provider-b", second, second.Sign(key), Ct));
        Assert.True(await receipts.AddAsync("w3", 2, "provider-b", "sealed-2", Ct));

        var records = await usage.ListAsync("w3", Ct);
        Assert.Equal(2, records.Count);
        Assert.Equal(first, UsageRecord.Verify(records[0]));
        Assert.Equal(second, UsageRecord.Verify(records[1]));
        Assert.Equal(("sealed-2", 2L, "provider-b"), ((await receipts.LatestAsync("w3", Ct))!.Sealed, (await receipts.LatestAsync("w3", Ct))!.Epoch, (await receipts.LatestAsync("w3", Ct))!.ProviderId));

        // Only the newest checkpoints are kept.
        var newest = new List<string>();
        for (var i = 0; i < WorkloadCheckpointStore.Kept + 2; i++)
        {
            _time.Advance(TimeSpan.FromSeconds(1));
            newest.Add((await checkpoints.AddAsync("w3", 2, "provider-b", [(byte)i], "h" + i, Ct))!.Id);
        }

        Assert.Null(await checkpoints.ReadAsync(checkpoint.Id, Ct));
        Assert.Null(await checkpoints.ReadAsync(newest[0], Ct));
        var newestData = await checkpoints.ReadAsync(newest[^1], Ct);
        Assert.Equal([(byte)(WorkloadCheckpointStore.Kept + 1)], newestData!);

        // A finished workload takes only the last usage window of the copy that held it at the end, and only for a while;
        // the revoked copy stays refused.
        Assert.True((await work.FinishAsync("w3", WorkTerminalKind.Cancelled, "consumer", Ct)).Accepted);
        var last = second with { WindowStart = 6000, WindowEnd = 6500 };
        Assert.False(await usage.AddAsync("provider-a", last with { Epoch = 1 }, (last with { Epoch = 1 }).Sign(key), Ct));
        Assert.False(await usage.AddAsync("provider-a", last, last.Sign(key), Ct));
        Assert.True(await usage.AddAsync("provider-b", last, last.Sign(key), Ct));
        Assert.Null(await checkpoints.AddAsync("w3", 2, "provider-b", [7], "y", Ct));
        Assert.False(await receipts.AddAsync("w3", 2, "provider-b", "sealed-after", Ct));
        _time.Advance(TimeSpan.FromMinutes(5) + TimeSpan.FromMilliseconds(1)); // past WorkloadFence.LastWindowGraceMs
        var later = second with { WindowStart = 6500, WindowEnd = 7000 };
        Assert.False(await usage.AddAsync("provider-b", later, later.Sign(key), Ct));
    }

    [Theory]
    [MemberData(nameof(Stores.Dialects), MemberType = typeof(Stores))]
    public async Task A_copy_whose_epoch_was_revoked_sends_no_last_window_after_the_workload_fails(SqlDialect dialect)
    {
        await using var store = await Stores.CreateAsync(dialect, Ct);
        var (_, work, _) = await SubmitAsync(store, "w6");
        var usage = new WorkloadUsageStore(store.Database, _time);
        using var key = Key.Create(SignatureAlgorithm.Ed25519);
        Assert.True((await work.RevokeAsync("w6", 1, "evicted", Ct)).Accepted);
        Assert.True((await work.FinishAsync("w6", WorkTerminalKind.Failed, "restarts_exhausted", Ct)).Accepted);
        var record = new UsageRecord("w6", 1, 0, 1000, 0.5, 64, 0, 1);
        Assert.False(await usage.AddAsync("provider-a", record, record.Sign(key), Ct));
    }

    [Theory]
    [MemberData(nameof(Stores.Dialects), MemberType = typeof(Stores))]
    public async Task Logs_keep_the_newest_chunks_of_each_workload(SqlDialect dialect)
    {
        await using var store = await Stores.CreateAsync(dialect, Ct);
        await SubmitAsync(store, "w4");
        await SubmitAsync(store, "w5");
        var logs = new WorkloadLogStore(store.Database, keptChunks: 3);
        var at = _time.GetUtcNow();
        await logs.AppendAsync([.. Enumerable.Range(0, 5).Select(i => new WorkloadLogChunk("w4", 1, "stdout", at, Encoding.UTF8.GetBytes($"line {i}\n")))], Ct);
        await logs.AppendAsync([new WorkloadLogChunk("w5", 1, "stderr", at, [1]), new WorkloadLogChunk("w4", 1, "stderr", at, Encoding.UTF8.GetBytes("oops\n"))], Ct);

        var w4 = await logs.ReadAsync("w4", 0, 100, Ct);
        Assert.Equal(["line 3\n", "line 4\n", "oops\n"], w4.Select(e => Encoding.UTF8.GetString(e.Data)));
        Assert.Equal("stderr", w4[^1].Stream);
        Assert.Equal(["oops\n"], (await logs.ReadAsync("w4", w4[1].Seq, 100, Ct)).Select(e => Encoding.UTF8.GetString(e.Data)));
        Assert.Single(await logs.ReadAsync("w5", 0, 100, Ct));
    }
}
