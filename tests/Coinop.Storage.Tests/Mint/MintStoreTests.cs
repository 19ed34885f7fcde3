using Coinop.Storage.Mint;

namespace Coinop.Storage.Tests.Mint;

public class MintStoreTests
{
    private static readonly DateTimeOffset Now = DateTimeOffset.FromUnixTimeMilliseconds(1_800_000_000_000);

    [Theory]
    [MemberData(nameof(Stores.Dialects), MemberType = typeof(Stores))]
    public async Task The_seed_is_created_once_and_exactly_one_keyset_per_unit_is_active(SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var store = await Stores.CreateAsync(dialect, ct);
        var keysets = new MintKeysetStore(store.Database);
        var seed = await keysets.GetOrCreateSeedAsync([1, 2, 3], ct);
        Assert.Equal([1, 2, 3], seed);
        Assert.Equal([1, 2, 3], await keysets.GetOrCreateSeedAsync([9], ct));

        MintKeysetRecord Make(long i) => new($"01{i:x64}", "sat", i, (ulong)i * 100, 64, true, Now);
        var first = await keysets.EnsureActiveAsync("sat", Make, ct);
        Assert.Equal(0, first.DerivationIndex);
        Assert.Equal(first, await keysets.EnsureActiveAsync("sat", Make, ct)); // already there: no new keyset
        var second = await keysets.RotateAsync("sat", Make, ct);
        Assert.Equal(1, second.DerivationIndex);
        var all = await keysets.ListAsync(ct);
        Assert.Equal([false, true], all.Select(k => k.Active));
        Assert.Equal(100UL, (await keysets.FindAsync(second.Id, ct))!.InputFeePpk);

        // The schema itself refuses a second active keyset for a unit.
        var ex = await Assert.ThrowsAnyAsync<Exception>(() => store.Database.WriteAsync((c, t) => Dapper.SqlMapper.ExecuteAsync(c,
            "INSERT INTO mint_keysets (id, unit, derivation_index, input_fee_ppk, max_order, active, created_at) VALUES ('x', 'sat', 7, 0, 64, 1, 0)",
            transaction: t), ct));
        Assert.True(Database.IsUniqueViolation(ex));
    }

    [Theory]
    [MemberData(nameof(Stores.Dialects), MemberType = typeof(Stores))]
    public async Task A_proof_enters_the_spent_set_once_and_pending_locks_settle_or_release(SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var store = await Stores.CreateAsync(dialect, ct);
        var proofs = new MintProofStore(store.Database);
        SpentProofRecord Proof(byte b, ulong amount) => new([2, b], "01ab", amount, "secret" + b, "02cc", null);
        var a = Proof(1, 1UL << 63); // the largest note survives the signed column
        var b = Proof(2, 2);

        Assert.Equal(2, await store.Database.WriteAsync((c, t) => proofs.InsertProofsAsync(c, t, [a, b], false, null, Now, ct), ct));
        Assert.Equal(0, await store.Database.WriteAsync((c, t) => proofs.InsertProofsAsync(c, t, [a], false, null, Now, ct), ct));
        Assert.All(await proofs.StatesAsync([a.Y, b.Y], ct), s => Assert.Equal("SPENT", s.State));

        var p = Proof(3, 4);
        Assert.Equal(1, await store.Database.WriteAsync((c, t) => proofs.InsertProofsAsync(c, t, [p], true, "melt1", Now, ct), ct));
        Assert.Equal(0, await store.Database.WriteAsync((c, t) => proofs.InsertProofsAsync(c, t, [p], false, null, Now, ct), ct)); // locked
        Assert.Equal("PENDING", Assert.Single(await proofs.StatesAsync([p.Y], ct)).State);
        Assert.Equal(1, await store.Database.WriteAsync((c, t) => proofs.ReleasePendingAsync(c, t, "melt1", ct), ct));
        Assert.Empty(await proofs.StatesAsync([p.Y], ct));

        Assert.Equal(1, await store.Database.WriteAsync((c, t) => proofs.InsertProofsAsync(c, t, [p], true, "melt2", Now, ct), ct));
        Assert.Equal(1, await store.Database.WriteAsync((c, t) => proofs.SettlePendingAsync(c, t, "melt2", Now, ct), ct));
        Assert.Equal(0, await store.Database.WriteAsync((c, t) => proofs.ReleasePendingAsync(c, t, "melt2", ct), ct)); // SPENT is forever
        Assert.Equal("SPENT", Assert.Single(await proofs.StatesAsync([p.Y], ct)).State);

        var sig = new SignatureRecord([3, 9], "01ab", 1UL << 63, "02dd", "e", "s");
        Assert.Equal(1, await store.Database.WriteAsync((c, t) => proofs.InsertSignaturesAsync(c, t, [sig], Now, ct), ct));
        Assert.Equal(0, await store.Database.WriteAsync((c, t) => proofs.InsertSignaturesAsync(c, t, [sig], Now, ct), ct));
        var found = Assert.Single(await proofs.FindSignaturesAsync([sig.B, [3, 8]], ct));
        Assert.Equal(sig.B, found.B);
        Assert.Equal(sig, found with { B = sig.B });
    }

    [Theory]
    [MemberData(nameof(Stores.Dialects), MemberType = typeof(Stores))]
    public async Task Quote_states_only_move_forward_from_the_expected_state(SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var store = await Stores.CreateAsync(dialect, ct);
        var quotes = new MintQuoteStore(store.Database);
        await quotes.InsertMintQuoteAsync(new MintQuoteRecord("q1", "bolt11", "lnbc", "h", 10, "sat", "UNPAID", Now, Now.AddMinutes(10)), ct);
        Assert.False(await store.Database.WriteAsync((c, t) => quotes.TryIssueMintQuoteAsync(c, t, "q1", Now, ct), ct));
        Assert.True(await quotes.MarkMintQuotePaidAsync("q1", Now, ct));
        Assert.False(await quotes.MarkMintQuotePaidAsync("q1", Now, ct));
        Assert.True(await store.Database.WriteAsync((c, t) => quotes.TryIssueMintQuoteAsync(c, t, "q1", Now, ct), ct));
        Assert.False(await store.Database.WriteAsync((c, t) => quotes.TryIssueMintQuoteAsync(c, t, "q1", Now, ct), ct));
        Assert.Equal("ISSUED", (await quotes.FindMintQuoteAsync("q1", ct))!.State);

        await quotes.InsertMeltQuoteAsync(new MeltQuoteRecord("m1", "bolt11", "lnbc", "h", 5, 1, "sat", "UNPAID", Now, Now.AddMinutes(2), Now), ct);
        Assert.True(await store.Database.WriteAsync((c, t) => quotes.TryStartMeltAsync(c, t, "m1", 6, 0, "[]", Now, ct), ct));
        Assert.False(await store.Database.WriteAsync((c, t) => quotes.TryStartMeltAsync(c, t, "m1", 6, 0, "[]", Now, ct), ct));
        Assert.Equal(["m1"], (await quotes.ListPendingMeltsAsync(Now.AddSeconds(1), ct)).Select(q => q.Id));
        Assert.Empty(await quotes.ListPendingMeltsAsync(Now, ct));
        Assert.True(await store.Database.WriteAsync((c, t) => quotes.CompleteMeltAsync(c, t, "m1", 0, "pre", null, Now, ct), ct));
        Assert.False(await store.Database.WriteAsync((c, t) => quotes.ResetMeltAsync(c, t, "m1", Now, ct), ct));
        var melt = (await quotes.FindMeltQuoteAsync("m1", ct))!;
        Assert.Equal(("PAID", 6UL, "pre"), (melt.State, melt.InputAmount!.Value, melt.PaymentPreimage!));
    }
}
