using Coinop.Storage.Payments;

namespace Coinop.Storage.Tests.Ledger;

/// <summary>
/// The change stock: a proof is taken once, of the amount asked; and migration 0101 (SQLite: the stock kept in one
/// b-tree by amount) keeps every proof that was in stock before it.
/// </summary>
public class ChangeStockStoreTests
{
    private static readonly DateTimeOffset Now = DateTimeOffset.FromUnixTimeMilliseconds(1_800_000_000_000);

    [Theory]
    [MemberData(nameof(Stores.Dialects), MemberType = typeof(Stores))]
    public async Task Stock_from_before_the_migration_is_kept_and_each_proof_is_taken_once_by_its_amount(SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var store = await Stores.CreateAsync(dialect, 100, ct);
        var db = store.Database;
        var stock = new ChangeStockStore(db);
        StockedProof[] proofs =
        [
            new("s-a", 1, "00k", "c-a", "{\"e\":\"1\"}"),
            new("s-b", 2, "00k", "c-b", null),
            new("s-c", 2, "00k", "c-c", "{\"e\":\"3\"}"),
            new("s-d", 4, "00k", "c-d", null),
        ];
        await db.WriteAsync((c, t) => stock.AddAsync(c, t, proofs, Now, ct), ct);

        Assert.True(await Migrator.MigrateAsync(db, ct) >= 1);

        Assert.Equal(new Dictionary<long, int> { [1] = 1, [2] = 2, [4] = 1 }, await stock.CountsAsync(ct));
        var taken = new List<StockedProof>();
        for (var i = 0; i < 3; i++)
        {
            if (await db.WriteAsync((c, t) => stock.TakeAsync(c, t, 2, ct), ct) is { } proof)
            {
                taken.Add(proof);
            }
        }

        // The two proofs of 2, each once, as they were stocked; then none.
        Assert.Equal(proofs.Where(p => p.Amount == 2).OrderBy(p => p.Secret), taken.OrderBy(p => p.Secret));
        Assert.Equal(proofs[0], await db.WriteAsync((c, t) => stock.TakeAsync(c, t, 1, ct), ct));
        Assert.Null(await db.WriteAsync((c, t) => stock.TakeAsync(c, t, 8, ct), ct));
        Assert.Equal(new Dictionary<long, int> { [4] = 1 }, await stock.CountsAsync(ct));
    }
}
