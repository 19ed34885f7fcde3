using Coinop.Core.Workloads;
using Coinop.Storage.Ledger;
using Coinop.Storage.Payments;
using Coinop.Storage.Workloads;
using Microsoft.Extensions.Time.Testing;

namespace Coinop.Storage.Tests.Ledger;

/// <summary>Paid workloads' accounts: money held per workload in the ledger, settled spans once, closed once.</summary>
public class WorkloadAccountStoreTests
{
    private static readonly DateTimeOffset Start = DateTimeOffset.FromUnixTimeMilliseconds(1_800_000_000_000);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [MemberData(nameof(Stores.Dialects), MemberType = typeof(Stores))]
    public async Task Workload_money_is_held_until_settled_and_a_closed_account_must_be_empty(SqlDialect dialect)
    {
        await using var store = await Stores.CreateAsync(dialect, Ct);
        var ledger = new LedgerStore(store.Database);
        var accounts = new WorkloadAccountStore(store.Database);
        await InsertWorkloadAsync(store, "wl1");
        var workload = LedgerAccounts.Workload("wl1");

        await store.Database.WriteAsync(async (c, t) =>
        {
            await ledger.PostAsync(c, t, "payment", "t1", [new(LedgerAccounts.Received, LedgerAccounts.Holds, 10_000)], Start, Ct);
            await accounts.OpenAsync(c, t, "wl1", "balance:t1", Start, Start, Ct);
            await ledger.PostAsync(c, t, "workload-payment", "wl1", [new(LedgerAccounts.Holds, workload, 10_000)], Start, Ct);
        }, Ct);
        Assert.Equal(new LedgerSummary(10_000, 0, 0, 0, 10_000, 0, 0, 0, 0), await ledger.SummaryAsync(Ct));

        // A settled span: 3 000 msat consumed, 2 700 to the provider, 300 to the fee.
        Assert.True(await store.Database.WriteAsync(async (c, t) =>
        {
            await ledger.PostAsync(c, t, "workload-usage", "wl1",
                [new(workload, LedgerAccounts.Spent, 3_000), new(LedgerAccounts.Spent, LedgerAccounts.Provider("p1"), 2_700), new(LedgerAccounts.Spent, LedgerAccounts.Fee, 300)],
                Start, Ct);
            return await accounts.AdvanceAsync(c, t, "wl1", Start, Start.AddSeconds(60), 3_000, Ct);
        }, Ct));
        var summary = await ledger.SummaryAsync(Ct);
        Assert.Equal(new LedgerSummary(10_000, 3_000, 0, 0, 7_000, 2_700, 2_700, 300, 0), summary);
        Assert.Empty(summary.Imbalances());
        Assert.Empty(await ledger.AuditAsync(Ct));

        // The account can never pay out more than it holds.
        await Assert.ThrowsAsync<InsufficientFundsException>(() => store.Database.WriteAsync((c, t) =>
            ledger.PostAsync(c, t, "workload-refund", "wl1", [new(workload, LedgerAccounts.Refunded, 7_001)], Start, Ct), Ct));

        // Closed with money left in it is a discrepancy the audit reports.
        Assert.True(await store.Database.WriteAsync((c, t) => accounts.CloseAsync(c, t, "wl1", 0, null, Start, Ct), Ct));
        Assert.Contains(await ledger.AuditAsync(Ct), p => p.Contains("wl1", StringComparison.Ordinal));
        await store.Database.WriteAsync((c, t) => ledger.PostAsync(c, t, "workload-refund", "wl1", [new(workload, LedgerAccounts.Refunded, 7_000)], Start, Ct), Ct);
        Assert.Empty(await ledger.AuditAsync(Ct));
        Assert.Empty((await ledger.SummaryAsync(Ct)).Imbalances());
    }

    [Theory]
    [MemberData(nameof(Stores.Dialects), MemberType = typeof(Stores))]
    public async Task A_span_is_settled_once_and_an_account_closed_once_even_when_writers_race(SqlDialect dialect)
    {
        await using var store = await Stores.CreateAsync(dialect, Ct);
        var accounts = new WorkloadAccountStore(store.Database);
        await InsertWorkloadAsync(store, "wl2");
        await store.Database.WriteAsync((c, t) => accounts.OpenAsync(c, t, "wl2", "balance:k1", Start, Start, Ct), Ct);

        var advanced = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => store.Database.WriteAsync((c, t) =>
            accounts.AdvanceAsync(c, t, "wl2", Start, Start.AddSeconds(10 + i), 100, Ct), Ct)));
        Assert.Single(advanced, a => a);
        var account = (await accounts.FindAsync("wl2", Ct))!;
        Assert.Equal(100, account.ChargedMsat);
        Assert.True(account.SettledUntil > Start);
        // Never backwards.
        Assert.False(await store.Database.WriteAsync((c, t) => accounts.AdvanceAsync(c, t, "wl2", account.SettledUntil, Start, 1, Ct), Ct));

        var closed = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => store.Database.WriteAsync((c, t) =>
            accounts.CloseAsync(c, t, "wl2", 1_000 * i, "cashuB" + i, Start, Ct), Ct)));
        var winner = Assert.Single(Enumerable.Range(0, 8), i => closed[i]);
        account = (await accounts.FindAsync("wl2", Ct))!;
        Assert.Equal((WorkloadAccountState.Closed, 1_000L * winner, "cashuB" + winner), (account.State, account.RefundMsat!.Value, account.RefundToken));
        Assert.False(await store.Database.WriteAsync((c, t) => accounts.AdvanceAsync(c, t, "wl2", account.SettledUntil, account.SettledUntil.AddSeconds(1), 1, Ct), Ct));
    }

    [Theory]
    [MemberData(nameof(Stores.Dialects), MemberType = typeof(Stores))]
    public async Task Open_accounts_of_finished_workloads_are_found_for_recovery(SqlDialect dialect)
    {
        await using var store = await Stores.CreateAsync(dialect, Ct);
        var accounts = new WorkloadAccountStore(store.Database);
        await InsertWorkloadAsync(store, "wl3");
        var finished = await InsertWorkloadAsync(store, "wl4");
        var workloads = new WorkloadStore(store.Database, TimeProvider.System);
        var ended = WorkloadMachine.Apply(finished.Workload, new WorkloadInput.Cancel("consumer"), WorkloadTimings.Default, Start.AddSeconds(30)).Next;
        Assert.NotNull(await workloads.SaveAsync(finished, ended, finished.Terms, finished.Rates, Ct));
        await store.Database.WriteAsync(async (c, t) =>
        {
            await accounts.OpenAsync(c, t, "wl3", "balance:a", Start, Start, Ct);
            await accounts.OpenAsync(c, t, "wl4", "balance:b", Start, Start, Ct);
        }, Ct);

        var open = Assert.Single(await accounts.OpenOfFinishedAsync(Ct));
        Assert.Equal(new FinishedWorkloadAccount("wl4", Start.AddSeconds(30), finished.Workload.PaidUntil), open);
        Assert.True((await accounts.FindAsync("wl3", Ct))!.IsOpen);
    }

    [Theory]
    [MemberData(nameof(Stores.Dialects), MemberType = typeof(Stores))]
    public async Task A_holds_change_is_collected_once(SqlDialect dialect)
    {
        await using var store = await Stores.CreateAsync(dialect, Ct);
        var holds = new PaymentHoldStore(store.Database);
        await store.Database.WriteAsync(async (c, t) =>
        {
            await holds.InsertAsync(c, t, new PaymentHold("r1", "n1", HoldPayer.Token, "balance:t1", 4_000, HoldState.Held, Start), Ct);
            await holds.InsertAsync(c, t, new PaymentHold("r2", "n1", HoldPayer.Token, "balance:t1", 4_000, HoldState.Held, Start), Ct);
            await holds.TryCloseAsync(c, t, "r1", new HoldOutcome(HoldState.Settled, 1_000, "p1", 3), Start, Ct);
            await holds.SetChangeTokenAsync(c, t, "r1", "cashuBchange", Ct);
        }, Ct);

        Assert.Equal([new UncollectedChange("r1", "cashuBchange")], await holds.UncollectedChangeAsync("balance:t1", Ct));
        Assert.Empty(await holds.UncollectedChangeAsync("balance:other", Ct));
        var marked = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => store.Database.WriteAsync((c, t) => holds.MarkChangeCollectedAsync(c, t, "r1", Start, Ct), Ct)));
        Assert.Single(marked, m => m);
        Assert.Empty(await holds.UncollectedChangeAsync("balance:t1", Ct));
        Assert.False(await store.Database.WriteAsync((c, t) => holds.MarkChangeCollectedAsync(c, t, "r2", Start, Ct), Ct)); // no change to collect
    }

    private static async Task<StoredWorkload> InsertWorkloadAsync(TestStore store, string id)
    {
        var workloads = new WorkloadStore(store.Database, new FakeTimeProvider(Start));
        var spec = new WorkloadSpec("sleep", ["60"], 1, 256, TimeSpan.FromHours(1), null, RestartPolicy.Never, 0, false);
        var workload = WorkloadMachine.Submit(id, spec, "p1", [], Start).Next;
        Assert.True(await workloads.InsertAsync(workload, new WorkloadTerms(null, null, 21.25m, 76_500), new Dictionary<string, string>(),
            new Dictionary<string, decimal> { ["p1"] = 21.25m }, Ct));
        return (await workloads.FindAsync(id, Ct))!;
    }
}
