using Coinop.Ecash;
using Coinop.Ecash.Crypto;
using Coinop.Ecash.MintApi;
using Coinop.Ecash.Tokens;
using Coinop.Ecash.Wallet;
using Coinop.Market.Mint;
using Coinop.Storage.Mint;
using Microsoft.Extensions.DependencyInjection;

namespace Coinop.Market.Tests.Mint;

public class MintFlowTests
{
    [Fact]
    public async Task Info_keys_and_keysets_describe_one_active_sat_keyset_whose_id_matches_its_keys()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await TestMarket.StartAsync();
        var info = await market.Mint.GetInfoAsync(ct);
        Assert.Contains("12", info.Nuts!.Keys);
        Assert.Equal("bolt11", info.Nuts["4"]["methods"]![0]!["method"]!.GetValue<string>());

        var keysets = (await market.Mint.GetKeysetsAsync(ct)).Keysets;
        var active = Assert.Single(keysets);
        Assert.True(active.Active);
        Assert.Equal("sat", active.Unit);
        Assert.StartsWith("01", active.Id, StringComparison.Ordinal);
        Assert.Equal(66, active.Id.Length);

        var keys = Assert.Single((await market.Mint.GetActiveKeysAsync(ct)).Keysets);
        Assert.Equal(64, keys.Keys.Count);
        Assert.Contains("9223372036854775808", keys.Keys.Keys);
        var parsed = await market.Mint.GetKeysetKeysAsync(active.Id, ct); // the client checks the id against the keys
        Assert.True(parsed.Matches(active.Id, "sat", 0, null));
    }

    [Theory]
    [MemberData(nameof(TestMarket.Dialects), MemberType = typeof(TestMarket))]
    public async Task Mint_swap_melt_restore_and_checkstate_work_end_to_end_with_valid_dleq_everywhere(Storage.SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await TestMarket.StartAsync(dialect);
        var client = market.Mint;

        // NUT-04: quote, paid at once by the fake backend, then mint.
        var quote = await client.CreateMintQuoteAsync(100, ct);
        Assert.Equal(MintQuoteState.Unpaid, quote.State);
        Assert.StartsWith("lnbc1u1", quote.Request, StringComparison.Ordinal);
        Assert.Equal(40, quote.Quote.Length);
        Assert.Equal(MintQuoteState.Paid, (await client.GetMintQuoteAsync(quote.Quote, ct)).State);
        var active = await client.GetActiveKeysetAsync(ct);
        var outputs = BlindedOutputs.Create(active.Id, Amounts.Split(100));
        var minted = await client.MintAsync(new MintRequest(quote.Quote, [.. outputs.Select(o => o.Message)]), ct);
        Assert.All(minted.Signatures, s => Assert.NotNull(s.Dleq));
        var proofs = await client.UnblindAsync(outputs, minted.Signatures, ct);
        Assert.Equal(100UL, proofs.Aggregate(0UL, (a, p) => a + p.Amount));
        Assert.Equal(MintQuoteState.Issued, (await client.GetMintQuoteAsync(quote.Quote, ct)).State);
        var keys = await client.GetKeysetKeysAsync(active.Id, ct);
        Assert.All(proofs, p => Assert.True(BlindedOutputs.VerifyProofDleq(p, keys)));

        // NUT-03: swap all into 1+1+2+32+64.
        var swapOutputs = BlindedOutputs.Create(active.Id, [1, 1, 2, 32, 64]);
        var swapped = await client.SwapAsync(new SwapRequest(proofs, [.. swapOutputs.Select(o => o.Message)]), ct);
        var fresh = await client.UnblindAsync(swapOutputs, swapped.Signatures, ct);
        Assert.Equal(5, fresh.Count);

        // NUT-07: the old proofs are spent, the new ones unspent.
        var ys = proofs.Concat(fresh).Select(p => Convert.ToHexStringLower(Bdhke.Y(p.Secret))).ToList();
        var states = (await client.CheckStateAsync(ys, ct)).States;
        Assert.Equal(ys, states.Select(s => s.Y));
        Assert.All(states.Take(proofs.Count), s => Assert.Equal(ProofState.Spent, s.State));
        Assert.All(states.Skip(proofs.Count), s => Assert.Equal(ProofState.Unspent, s.State));

        // NUT-09: the swap's outputs restore to the same signatures.
        var restored = await client.RestoreAsync([.. swapOutputs.Select(o => o.Message)], ct);
        Assert.Equal(swapped.Signatures.Select(s => s.C), restored.Signatures.Select(s => s.C));
        Assert.Equal(fresh.Select(p => p.C), (await client.UnblindAsync(swapOutputs, restored.Signatures, ct)).Select(p => p.C));

        // NUT-05 + NUT-08: melt 64 sat of an invoice; fee reserve 1, actual fee 0, so 1 sat comes back as change.
        var invoice = market.Lightning.Invoice(64_000);
        var meltQuote = await client.CreateMeltQuoteAsync(invoice, ct);
        Assert.Equal(64UL, meltQuote.Amount);
        Assert.Equal(1UL, meltQuote.FeeReserve);
        List<Proof> inputs = [fresh.Single(p => p.Amount == 64), fresh.First(p => p.Amount == 1)]; // amount + reserve
        var blanks = BlindedOutputs.Create(active.Id, [1]);
        var melted = await client.MeltAsync(new MeltRequest { Quote = meltQuote.Quote, Inputs = inputs, Outputs = [.. blanks.Select(b => b.Message)] }, ct);
        Assert.Equal(MeltQuoteState.Paid, melted.State);
        Assert.NotNull(melted.PaymentPreimage);
        var change = await client.UnblindAsync(blanks, melted.Change!, ct);
        Assert.Equal(1UL, Assert.Single(change).Amount);
        Assert.Equal(MeltQuoteState.Paid, (await client.GetMeltQuoteAsync(meltQuote.Quote, ct)).State);
        await CashuAssert.FailsWith(CashuErrorCode.InvoiceAlreadyPaid, () => client.MeltAsync(new MeltRequest { Quote = meltQuote.Quote, Inputs = inputs }, ct));

        // The change is good money.
        var last = BlindedOutputs.Create(active.Id, [1]);
        await client.SwapAsync(new SwapRequest(change, [.. last.Select(o => o.Message)]), ct);
    }

    [Fact]
    public async Task A_paid_melt_settles_even_when_a_change_blank_was_signed_before()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await TestMarket.StartAsync();
        var client = market.Mint;
        var active = await client.GetActiveKeysetAsync(ct);
        var proofs = await market.MintProofsAsync(66, [64, 2]);
        var earlier = BlindedOutputs.Create(active.Id, [1]);
        var spare = await market.MintProofsAsync(1);
        await client.SwapAsync(new SwapRequest(spare, [.. earlier.Select(o => o.Message)]), ct); // this blank is signed now

        // Fee reserve 1, actual fee 0: 2 sat would come back, but the blank offered for it was signed before.
        var invoice = market.Lightning.Invoice(64_000);
        var quote = await client.CreateMeltQuoteAsync(invoice, ct);
        var melted = await client.MeltAsync(new MeltRequest { Quote = quote.Quote, Inputs = proofs, Outputs = [.. earlier.Select(b => b.Message)] }, ct);

        Assert.Equal(MeltQuoteState.Paid, melted.State);
        Assert.Empty(melted.Change ?? []);
        var ys = proofs.Select(p => Convert.ToHexStringLower(Bdhke.Y(p.Secret))).ToList();
        Assert.All((await client.CheckStateAsync(ys, ct)).States, s => Assert.Equal(ProofState.Spent, s.State));
    }

    [Fact]
    public async Task Inputs_that_do_not_cover_their_input_fee_are_refused_and_stay_unspent()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await TestMarket.StartAsync();
        await MintKeysets.RotateAsync(market.App.Services.GetRequiredService<IMintKeysetStore>(), 2000, TimeProvider.System, ct);
        var proofs = await market.MintProofsAsync(2, [1, 1]); // 2 sat of inputs, 2 × 2000 ppk = 4 sat of fee

        var redeemed = await market.CashuMint.RedeemAsync(proofs, null, ct);

        Assert.False(redeemed.Succeeded);
        Assert.Equal(CashuErrorCode.TransactionNotBalanced, redeemed.ErrorCode);
        var ys = proofs.Select(p => Convert.ToHexStringLower(Bdhke.Y(p.Secret))).ToList();
        Assert.All((await market.Mint.CheckStateAsync(ys, ct)).States, s => Assert.Equal(ProofState.Unspent, s.State));
    }

    [Fact]
    public async Task Inputs_are_checked_against_the_keysets_last_seen_until_one_is_missing_then_the_store_is_read_again()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await TestMarket.StartAsync();
        var keysets = market.App.Services.GetRequiredService<MintKeysets>();
        var before = await keysets.ForInputsAsync(list => list, ct);
        Assert.NotNull(before);

        // Another node (or the CLI) rotates: the list as last seen does not know the new keyset...
        var rotated = await MintKeysets.RotateAsync(market.App.Services.GetRequiredService<IMintKeysetStore>(), 0, TimeProvider.System, ct);
        Assert.Same(before, await keysets.ForInputsAsync(list => list, ct));
        Assert.DoesNotContain(before, k => k.Record.Id == rotated.Id);

        // ...so asking for it reads the store again, and later calls see it too.
        var after = await keysets.ForInputsAsync(known => known.Any(k => k.Record.Id == rotated.Id) ? known : null, ct);
        Assert.NotNull(after);
        Assert.Contains(after, k => k.Record.Id == rotated.Id && k.Record.Active);
        Assert.Same(after, await keysets.ForInputsAsync(list => list, ct));
    }

    [Fact]
    public async Task A_rotated_keyset_still_redeems_but_never_signs_and_the_new_one_charges_its_input_fee()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await TestMarket.StartAsync();
        var oldProofs = await market.MintProofsAsync(8, [2, 2, 4]);
        var oldId = oldProofs[0].Id;

        var store = market.App.Services.GetRequiredService<IMintKeysetStore>();
        var rotated = await MintKeysets.RotateAsync(store, 100, TimeProvider.System, ct);
        Assert.NotEqual(oldId, rotated.Id);

        var keysets = (await market.Mint.GetKeysetsAsync(ct)).Keysets;
        Assert.False(keysets.Single(k => k.Id == oldId).Active);
        var active = keysets.Single(k => k.Active);
        Assert.Equal(rotated.Id, active.Id);
        Assert.Equal(100UL, active.InputFeePpk);
        Assert.Equal(rotated.Id, Assert.Single((await market.Mint.GetActiveKeysAsync(ct)).Keysets).Id);

        // Old keyset: outputs refused, inputs accepted (the old keyset has no fee).
        var toOld = BlindedOutputs.Create(oldId, [8]);
        await CashuAssert.FailsWith(CashuErrorCode.KeysetInactive, () => market.Mint.SwapAsync(new SwapRequest(oldProofs, [.. toOld.Select(o => o.Message)]), ct));
        var toNew = BlindedOutputs.Create(active.Id, [1, 1, 2, 4]);
        var fresh = await market.Mint.UnblindAsync(toNew, (await market.Mint.SwapAsync(new SwapRequest(oldProofs, [.. toNew.Select(o => o.Message)]), ct)).Signatures, ct);
        Assert.All(fresh, p => Assert.Equal(rotated.Id, p.Id));

        // New keyset: 4 inputs × 100 ppk = 0.4 → 1 sat fee. Outputs of 8 are unbalanced; 7 balance.
        var unbalanced = BlindedOutputs.Create(active.Id, [8]);
        await CashuAssert.FailsWith(CashuErrorCode.TransactionNotBalanced, () => market.Mint.SwapAsync(new SwapRequest(fresh, [.. unbalanced.Select(o => o.Message)]), ct));
        var balanced = BlindedOutputs.Create(active.Id, [1, 2, 4]);
        await market.Mint.SwapAsync(new SwapRequest(fresh, [.. balanced.Select(o => o.Message)]), ct);
        // The client computes the fee itself when swapping for fresh proofs.
        var more = await market.MintProofsAsync(16, [8, 8]);
        var swappedBack = await market.Mint.SwapForFreshAsync(more, ct);
        Assert.Equal(15UL, swappedBack.Aggregate(0UL, (a, p) => a + p.Amount));
    }

    [Theory]
    [MemberData(nameof(TestMarket.Dialects), MemberType = typeof(TestMarket))]
    public async Task Concurrent_swaps_of_the_same_proofs_let_exactly_one_win(Storage.SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await TestMarket.StartAsync(dialect);
        var active = await market.Mint.GetActiveKeysetAsync(ct);
        for (var round = 0; round < 3; round++)
        {
            var proofs = await market.MintProofsAsync(21);
            var attempts = Enumerable.Range(0, 8).Select(async _ =>
            {
                var outputs = BlindedOutputs.Create(active.Id, Amounts.Split(21));
                try
                {
                    await market.Mint.SwapAsync(new SwapRequest(proofs, [.. outputs.Select(o => o.Message)]), ct);
                    return 0;
                }
                catch (CashuException ex)
                {
                    return ex.Code;
                }
            }).ToList();
            var results = await Task.WhenAll(attempts);
            Assert.Single(results, r => r == 0);
            Assert.All(results.Where(r => r != 0), r => Assert.Equal(CashuErrorCode.ProofsAlreadySpent, r));
        }
    }

    [Theory]
    [MemberData(nameof(TestMarket.Dialects), MemberType = typeof(TestMarket))]
    public async Task Redeem_spends_atomically_with_the_callback_and_a_second_redeem_fails(Storage.SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await TestMarket.StartAsync(dialect);
        var proofs = await market.MintProofsAsync(13);
        var mint = market.CashuMint;

        // A callback that throws rolls the spend back.
        await Assert.ThrowsAsync<InvalidOperationException>(() => mint.RedeemAsync(proofs, (_, _, _, _) => throw new InvalidOperationException("ledger down"), ct));
        var ys = proofs.Select(p => Convert.ToHexStringLower(Bdhke.Y(p.Secret))).ToList();
        Assert.All((await market.Mint.CheckStateAsync(ys, ct)).States, s => Assert.Equal(ProofState.Unspent, s.State));

        // A callback that writes commits together with the spend.
        var result = await mint.RedeemAsync(proofs, async (c, t, spent, token) =>
        {
            await using var cmd = c.CreateCommand();
            cmd.Transaction = t;
            cmd.CommandText = $"INSERT INTO market_meta (key, value) VALUES ('test_credit', '{spent.Amount}')";
            await cmd.ExecuteNonQueryAsync(token);
        }, ct);
        Assert.True(result.Succeeded);
        Assert.Equal(13UL, result.Amount);
        Assert.Equal(0UL, result.InputFee);
        Assert.Equal("13", await market.App.Services.GetRequiredService<Storage.Meta.IMarketMetaStore>().GetAsync("test_credit", ct));
        Assert.All((await market.Mint.CheckStateAsync(ys, ct)).States, s => Assert.Equal(ProofState.Spent, s.State));

        var again = await mint.RedeemAsync(proofs, null, ct);
        Assert.False(again.Succeeded);
        Assert.Equal(CashuErrorCode.ProofsAlreadySpent, again.ErrorCode);
        var forged = await mint.RedeemAsync([proofs[0] with { Secret = "forged" }], null, ct);
        Assert.Equal(CashuErrorCode.ProofVerificationFailed, forged.ErrorCode);
    }

    [Fact]
    public async Task Issued_ecash_is_a_valid_token_any_wallet_can_swap()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await TestMarket.StartAsync();
        var issued = await market.CashuMint.IssueAsync(1234, ct);
        Assert.Equal(1234UL, issued.Amount);
        var token = TokenCodec.Decode(issued.Token);
        Assert.Equal(market.MintUrl, token.Mint);
        var resolved = await market.CashuMint.ResolveTokenAsync(token, ct);
        var keys = await market.Mint.GetKeysetKeysAsync(resolved.Proofs[0].Id, ct);
        Assert.All(resolved.Proofs, p => Assert.True(BlindedOutputs.VerifyProofDleq(p, keys)));
        var fresh = await market.Mint.SwapForFreshAsync(resolved.Proofs, ct);
        Assert.Equal(1234UL, fresh.Aggregate(0UL, (a, p) => a + p.Amount));
    }

    [Fact]
    public async Task A_melt_whose_payment_fails_releases_its_proofs()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await TestMarket.StartAsync();
        var proofs = await market.MintProofsAsync(32);
        var invoice = market.Lightning.Invoice(20_000);
        var quote = await market.Mint.CreateMeltQuoteAsync(invoice, ct);
        market.Lightning.FailPaymentsWith = "no route";
        await CashuAssert.FailsWith(CashuErrorCode.LightningPaymentFailed, () => market.Mint.MeltAsync(new MeltRequest { Quote = quote.Quote, Inputs = proofs }, ct));
        Assert.Equal(MeltQuoteState.Unpaid, (await market.Mint.GetMeltQuoteAsync(quote.Quote, ct)).State);
        var ys = proofs.Select(p => Convert.ToHexStringLower(Bdhke.Y(p.Secret))).ToList();
        Assert.All((await market.Mint.CheckStateAsync(ys, ct)).States, s => Assert.Equal(ProofState.Unspent, s.State));
        market.Lightning.FailPaymentsWith = null;
        Assert.Equal(MeltQuoteState.Paid, (await market.Mint.MeltAsync(new MeltRequest { Quote = quote.Quote, Inputs = proofs }, ct)).State);
    }
}

public class MultiNodeMintTests
{
    [Fact]
    public async Task Two_market_nodes_sharing_one_postgres_store_are_one_mint()
    {
        var ct = TestContext.Current.CancellationToken;
        var database = await TestMarket.CreatePostgresDatabaseAsync();
        await using var a = await TestMarket.StartAsync(Storage.SqlDialect.Postgres, postgresDatabase: database);
        await using var b = await TestMarket.StartAsync(Storage.SqlDialect.Postgres, postgresDatabase: database);
        Assert.Equal((await a.Mint.GetActiveKeysetAsync(ct)).Id, (await b.Mint.GetActiveKeysetAsync(ct)).Id); // one seed, one keyset

        var proofs = await a.MintProofsAsync(10);
        var active = await b.Mint.GetActiveKeysetAsync(ct);
        await b.Mint.SwapAsync(new SwapRequest(proofs, [.. BlindedOutputs.Create(active.Id, [2, 8]).Select(o => o.Message)]), ct); // minted on A, spent on B
        await CashuAssert.FailsWith(CashuErrorCode.ProofsAlreadySpent,
            () => a.Mint.SwapAsync(new SwapRequest(proofs, [.. BlindedOutputs.Create(active.Id, [2, 8]).Select(o => o.Message)]), ct));

        var rotated = await MintKeysets.RotateAsync(a.App.Services.GetRequiredService<IMintKeysetStore>(), 0, TimeProvider.System, ct);
        Assert.Equal(rotated.Id, (await b.Mint.GetActiveKeysetAsync(ct)).Id);
        var more = await a.MintProofsAsync(4);
        Assert.All(more, p => Assert.Equal(rotated.Id, p.Id));
        await CashuAssert.FailsWith(CashuErrorCode.KeysetInactive,
            () => b.Mint.SwapAsync(new SwapRequest(more, [.. BlindedOutputs.Create(active.Id, [4]).Select(o => o.Message)]), ct));
    }
}

public class MeltRecoveryTests
{
    [Fact]
    public async Task A_melt_left_pending_by_a_dead_payment_call_is_sent_and_settled_after_a_restart_never_released()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new Coinop.TestKit.TempDirectory("coinop-market");
        List<Proof> proofs;
        string quoteId;
        await using (var first = await TestMarket.StartAsync(dataDir: dir))
        {
            proofs = await first.MintProofsAsync(32);
            var invoice = first.Lightning.Invoice(20_000);
            quoteId = (await first.Mint.CreateMeltQuoteAsync(invoice, ct)).Quote;
            first.Lightning.LoseConnectionOnPay = true;
            var melt = await first.Mint.MeltAsync(new MeltRequest { Quote = quoteId, Inputs = proofs }, ct);
            Assert.Equal(MeltQuoteState.Pending, melt.State);
            var ys = proofs.Select(p => Convert.ToHexStringLower(Bdhke.Y(p.Secret))).ToList();
            Assert.All((await first.Mint.CheckStateAsync(ys, ct)).States, s => Assert.Equal(ProofState.Pending, s.State));
            var active = await first.Mint.GetActiveKeysetAsync(ct);
            await CashuAssert.FailsWith(CashuErrorCode.ProofsPending,
                () => first.Mint.SwapAsync(new SwapRequest(proofs, [.. BlindedOutputs.Create(active.Id, [32]).Select(o => o.Message)]), ct));
            await first.StopAsync();
        }

        // The new process's backend never saw the payment ("unknown"): the proofs stay locked and recovery sends the
        // payment (a backend refuses a second payment of one hash, so this cannot pay twice); then they are spent.
        await using var restarted = await TestMarket.StartAsync(dataDir: dir, services: s => s.Configure<MintOptions>(o => o.PendingMeltRecoveryAfter = TimeSpan.FromSeconds(1)));
        var paid = await Coinop.TestKit.Eventually.WaitAsync(() => restarted.Mint.GetMeltQuoteAsync(quoteId, ct)!, q => q!.State != MeltQuoteState.Pending,
            "the pending melt to be recovered", cancellationToken: ct);
        Assert.Equal(MeltQuoteState.Paid, paid.State);
        Assert.NotNull(paid.PaymentPreimage);
        var states = await restarted.Mint.CheckStateAsync([.. proofs.Select(p => Convert.ToHexStringLower(Bdhke.Y(p.Secret)))], ct);
        Assert.All(states.States, s => Assert.Equal(ProofState.Spent, s.State));
        // NUT-19: the same request again gets the quote's answer; other inputs for the paid quote are refused.
        Assert.Equal(MeltQuoteState.Paid, (await restarted.Mint.MeltAsync(new MeltRequest { Quote = quoteId, Inputs = proofs }, ct)).State);
        await CashuAssert.FailsWith(CashuErrorCode.InvoiceAlreadyPaid,
            async () => await restarted.Mint.MeltAsync(new MeltRequest { Quote = quoteId, Inputs = proofs, Outputs = [.. BlindedOutputs.Create((await restarted.Mint.GetActiveKeysetAsync(ct)).Id, [1]).Select(o => o.Message)] }, ct));
    }
}
