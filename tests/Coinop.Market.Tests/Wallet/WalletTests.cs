using Coinop.Ecash.MintApi;
using Coinop.Ecash.MintClient;
using Coinop.Ecash.Tokens;
using Coinop.Ecash.Wallet;
using Coinop.TestKit;
using Coinop.Wallet;
using Coinop.Wallet.Store;

namespace Coinop.Market.Tests.Wallet;

public class WalletTests
{
    [Fact]
    public async Task Mint_send_receive_and_history_between_two_wallets()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await TestMarket.StartAsync();
        using var dirs = new TempDirectory("coinop-wallets");
        var alice = await CashuWallet.OpenAsync(dirs.Sub("alice"), market.Http, TimeProvider.System, ct);
        var bob = await CashuWallet.OpenAsync(dirs.Sub("bob"), market.Http, TimeProvider.System, ct);

        Assert.Equal(market.MintUrl, await alice.ResolveMintUrlAsync(market.Url, ct)); // a market's base URL finds its mint
        string? invoice = null;
        var minted = await alice.MintAsync(market.MintUrl, 100, i => invoice = i, TimeSpan.FromSeconds(30), ct);
        Assert.Equal(100UL, minted.Amount);
        Assert.StartsWith("lnbc", invoice, StringComparison.Ordinal);
        Assert.Equal(new MintBalance(market.MintUrl, 100, 0), Assert.Single(await alice.BalancesAsync(ct)));

        var token = await alice.SendAsync(37, null, ct, memo: "lunch"); // 64+32+4 has no exact 37: the wallet swaps first
        Assert.StartsWith("cashuB", token, StringComparison.Ordinal);
        var decoded = TokenCodec.Decode(token);
        Assert.Equal(37UL, decoded.Amount);
        Assert.Equal("lunch", decoded.Memo);
        Assert.All(decoded.Proofs, p => Assert.NotNull(p.Dleq?.R)); // the receiver can check the mint's signatures offline
        Assert.Equal(new MintBalance(market.MintUrl, 63, 37), Assert.Single(await alice.BalancesAsync(ct)));

        Assert.Equal(37UL, await bob.ReceiveAsync(token, ct)); // bob had no balance at this mint: it is opened
        Assert.Equal(new MintBalance(market.MintUrl, 37, 0), Assert.Single(await bob.BalancesAsync(ct)));
        await CashuAssert.FailsWith(CashuErrorCode.ProofsAlreadySpent, () => bob.ReceiveAsync(token, ct));
        Assert.Empty(await (await WalletStore.OpenAsync(Path.Combine(dirs.Path, "bob"), ct)).PendingOperationsAsync(ct)); // a refusal leaves nothing to recover

        await alice.RefreshReservedAsync(ct);
        Assert.Equal(new MintBalance(market.MintUrl, 63, 0), Assert.Single(await alice.BalancesAsync(ct)));
        var exact = await alice.SendAsync(32, market.MintUrl, ct); // held exactly: no swap needed
        Assert.Single(TokenCodec.Decode(exact).Proofs);
        await Assert.ThrowsAsync<InvalidOperationException>(() => alice.SendAsync(1000, null, ct));

        var history = await alice.HistoryAsync(10, ct);
        Assert.Equal(["send", "send", "mint"], history.Where(h => h.Kind != "swap").Select(h => h.Kind));
        Assert.Equal(token, history.Single(h => h.Amount == 37).Token);
        Assert.Equal("receive", Assert.Single(await bob.HistoryAsync(10, ct)).Kind);
    }

    [Fact]
    public async Task A_token_whose_dleq_does_not_verify_is_refused_before_anything_is_swapped()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await TestMarket.StartAsync();
        using var dirs = new TempDirectory("coinop-wallets");
        var issued = await market.CashuMint.IssueAsync(16, ct);
        var token = TokenCodec.Decode(issued.Token);
        var forged = token with { Proofs = [.. token.Proofs.Select(p => p with { Dleq = p.Dleq! with { S = p.Dleq.E } })] };
        var bob = await CashuWallet.OpenAsync(dirs.Sub("bob"), market.Http, TimeProvider.System, ct);
        var ex = await CashuAssert.FailsWith(CashuErrorCode.ProofVerificationFailed, () => bob.ReceiveAsync(TokenCodec.EncodeV4(forged), ct));
        Assert.Contains("DLEQ", ex.Detail, StringComparison.Ordinal);
        Assert.Equal(16UL, await bob.ReceiveAsync(issued.Token, ct)); // the genuine token is still good
        await Assert.ThrowsAsync<FormatException>(() => bob.ReceiveAsync("cashuBnonsense", ct));
    }

    [Fact]
    public async Task A_swap_interrupted_after_the_mint_answered_is_recovered_with_restore()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await TestMarket.StartAsync();
        using var dirs = new TempDirectory("coinop-wallets");
        var dir = dirs.Sub("w");
        var wallet = await CashuWallet.OpenAsync(dir, market.Http, TimeProvider.System, ct);
        await wallet.MintAsync(market.MintUrl, 8, null, TimeSpan.FromSeconds(30), ct);

        // Do what SendAsync does up to the mint's answer, then "crash" before storing the result.
        var store = await WalletStore.OpenAsync(dir, ct);
        var inputs = (await store.ProofsAsync(null, WalletProofState.Unspent, ct)).Select(p => p.Proof).ToList();
        var client = new CashuMintClient(market.Http, market.MintUrl);
        var active = await client.GetActiveKeysetAsync(ct);
        var outputs = BlindedOutputs.Create(active.Id, [4, 4]);
        var savedOutputs = System.Text.Json.JsonSerializer.Serialize(outputs.Select(o => new
        {
            o.Amount,
            o.KeysetId,
            o.Secret,
            R = Coinop.Ecash.Crypto.Secp256k1.ScalarHex(o.R),
            o.Message,
        }));
        await store.BeginOperationAsync(market.MintUrl, "swap", savedOutputs, [.. inputs.Select(p => p.Secret)], DateTimeOffset.UnixEpoch, ct);
        await client.SwapAsync(new SwapRequest(inputs, [.. outputs.Select(o => o.Message)]), ct);

        var reopened = await CashuWallet.OpenAsync(dir, market.Http, TimeProvider.System, ct);
        Assert.Equal(new MintBalance(market.MintUrl, 8, 0), Assert.Single(await reopened.BalancesAsync(ct)));
        Assert.Empty(await store.PendingOperationsAsync(ct));
        Assert.Contains(await reopened.HistoryAsync(5, ct), h => h.Kind == "recover" && h.Amount == 8);
        var token = await reopened.SendAsync(8, null, ct); // the recovered proofs are real money
        Assert.Equal(8UL, TokenCodec.Decode(token).Amount);

        // An operation whose mint is unreachable does not stop the wallet from opening; it waits for the next run.
        await store.BeginOperationAsync("http://127.0.0.1:1", "swap", "[]", [], DateTimeOffset.UnixEpoch, ct);
        var offline = await CashuWallet.OpenAsync(dir, market.Http, TimeProvider.System, ct);
        Assert.Single(await offline.BalancesAsync(ct));
        Assert.Single(await store.PendingOperationsAsync(ct));
    }
}
