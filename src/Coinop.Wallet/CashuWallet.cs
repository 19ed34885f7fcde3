using Coinop.Ecash;
using Coinop.Ecash.Crypto;
using Coinop.Ecash.MintApi;
using Coinop.Ecash.MintClient;
using Coinop.Ecash.Tokens;
using Coinop.Ecash.Wallet;
using Coinop.Wallet.Store;

namespace Coinop.Wallet;

/// <summary>A mint's balance in the wallet.</summary>
public sealed record MintBalance(string Mint, ulong Available, ulong Reserved);

/// <summary>The result of minting: the invoice that was paid and the amount now held.</summary>
public sealed record MintedEcash(string Mint, string Invoice, ulong Amount);

/// <summary>
/// A Cashu wallet over several mints, with proofs in SQLite. What the CLI and, later, <c>coinop chat</c> use:
/// <see cref="MintAsync"/> (fund from Lightning), <see cref="SendAsync"/> ("give me a token of N sat from mint M"),
/// <see cref="ReceiveAsync"/> ("take this change token"), balances and history. Every signature's DLEQ proof is
/// verified before a proof is stored, and the DLEQ a received token carries is checked too.
/// </summary>
public sealed partial class CashuWallet(WalletStore store, HttpClient http, TimeProvider time)
{
    private readonly Dictionary<string, CashuMintClient> _clients = new(StringComparer.Ordinal);

    public static async Task<CashuWallet> OpenAsync(string dataDir, HttpClient http, TimeProvider time, CancellationToken cancellationToken)
    {
        var wallet = new CashuWallet(await WalletStore.OpenAsync(dataDir, cancellationToken), http, time);
        await wallet.RecoverAsync(cancellationToken);
        return wallet;
    }

    /// <summary>
    /// Finds the Cashu API at <paramref name="url"/>: the URL itself, or <c>{url}/mint</c> for a Coinop market's base URL.
    /// </summary>
    public async Task<string> ResolveMintUrlAsync(string url, CancellationToken cancellationToken)
    {
        var normalized = Token.NormalizeMintUrl(url);
        foreach (var candidate in new[] { normalized, normalized + "/mint" })
        {
            try
            {
                await Client(candidate).GetInfoAsync(cancellationToken);
                return candidate;
            }
            catch (HttpRequestException ex) when (ex.StatusCode == System.Net.HttpStatusCode.NotFound)
            {
            }
        }

        throw new HttpRequestException($"no Cashu mint answers at {normalized}", null, System.Net.HttpStatusCode.NotFound);
    }

    /// <summary>
    /// Mints <paramref name="amount"/> sat at <paramref name="mintUrl"/>: asks for an invoice, reports it through
    /// <paramref name="onInvoice"/>, waits until the mint sees it paid (at once with a fake backend), then mints.
    /// </summary>
    public async Task<MintedEcash> MintAsync(string mintUrl, ulong amount, Action<string>? onInvoice, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var quote = await QuoteMintAsync(mintUrl, amount, cancellationToken);
        onInvoice?.Invoke(quote.Request);
        return await FinishMintAsync(mintUrl, quote, amount, timeout, cancellationToken);
    }

    /// <summary>Asks <paramref name="mintUrl"/> for an invoice of <paramref name="amount"/> sat (a NUT-04 mint quote).</summary>
    public Task<MintQuoteResponse> QuoteMintAsync(string mintUrl, ulong amount, CancellationToken cancellationToken) =>
        Client(mintUrl).CreateMintQuoteAsync(amount, cancellationToken);

    /// <summary>
    /// Waits until the quote's invoice is paid (told over the mint's NUT-17 WebSocket, asking the mint every
    /// <paramref name="pollInterval"/> as the fallback), then mints its amount into this wallet.
    /// </summary>
    public async Task<MintedEcash> FinishMintAsync(string mintUrl, MintQuoteResponse quote, ulong amount, TimeSpan timeout, CancellationToken cancellationToken,
        TimeSpan? pollInterval = null)
    {
        var client = Client(mintUrl);
        quote = await MintQuoteWaiter.WaitAsync(client, quote, pollInterval ?? TimeSpan.FromSeconds(2), timeout, time, cancellationToken);
        if (quote.State != MintQuoteState.Paid)
        {
            throw new InvalidOperationException($"the quote {quote.Quote} is {quote.State}: nothing to mint");
        }

        var active = await client.GetActiveKeysetAsync(cancellationToken);
        var outputs = BlindedOutputs.Create(active.Id, Amounts.Split(amount));
        var op = await store.BeginOperationAsync(client.MintUrl, "mint", SerializeOutputs(outputs), [], time.GetUtcNow(), cancellationToken);
        var response = await AbandonOnRefusalAsync(op, () => client.MintAsync(new MintRequest(quote.Quote, [.. outputs.Select(o => o.Message)]), cancellationToken));
        var proofs = await client.UnblindAsync(outputs, response.Signatures, cancellationToken);
        await store.CompleteAsync(op, client.MintUrl, proofs, WalletProofState.Unspent, [],
            new HistoryEntry(0, default, "mint", client.MintUrl, amount, 0, null, quote.Request), time.GetUtcNow(), cancellationToken);
        return new MintedEcash(client.MintUrl, quote.Request, amount);
    }

    /// <summary>
    /// Funds the wallet with <paramref name="amount"/> sat at a Coinop market's mint (or any mint URL): resolves the
    /// mint and mints, waiting for the invoice to be paid. With a fake Lightning backend it is paid at once, which is
    /// how <c>coinop up</c> gives the demo's wallet money to pay with.
    /// </summary>
    public async Task<MintedEcash> FundAsync(string marketOrMintUrl, ulong amount, TimeSpan timeout, CancellationToken cancellationToken) =>
        await MintAsync(await ResolveMintUrlAsync(marketOrMintUrl, cancellationToken), amount, null, timeout, cancellationToken);

    public async Task<IReadOnlyList<MintBalance>> BalancesAsync(CancellationToken cancellationToken)
    {
        var unspent = await store.ProofsAsync(null, WalletProofState.Unspent, cancellationToken);
        var reserved = await store.ProofsAsync(null, WalletProofState.Reserved, cancellationToken);
        return [.. unspent.Concat(reserved).GroupBy(p => p.Mint).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => new MintBalance(g.Key,
            Sum(g.Where(p => p.State == WalletProofState.Unspent)), Sum(g.Where(p => p.State == WalletProofState.Reserved))))];
    }

    /// <summary>
    /// Makes a <c>cashuB</c> token worth exactly <paramref name="amount"/> sat of <paramref name="mintUrl"/> (or of the
    /// mint with the largest balance). Uses proofs that add up exactly when it has them; otherwise swaps at the mint
    /// for the right denominations (paying the mint's input fee from the change). The token's proofs are reserved so
    /// they are never used twice; the receiver pays the input fee of its own swap.
    /// </summary>
    public async Task<string> SendAsync(ulong amount, string? mintUrl, CancellationToken cancellationToken, string? memo = null)
    {
        ArgumentOutOfRangeException.ThrowIfZero(amount);
        var mint = mintUrl is null ? await PickMintAsync(amount, cancellationToken) : Token.NormalizeMintUrl(mintUrl);
        var available = (await store.ProofsAsync(mint, WalletProofState.Unspent, cancellationToken)).Select(p => p.Proof).ToList();
        if (Sum(available) < amount)
        {
            throw new InvalidOperationException($"not enough ecash at {mint}: {Sum(available)} sat available, {amount} needed");
        }

        var exact = SelectExact(available, amount);
        List<Proof> toSend;
        if (exact is not null)
        {
            toSend = exact;
        }
        else
        {
            var client = Client(mint);
            var keysets = (await client.GetKeysetsAsync(cancellationToken)).Keysets.ToDictionary(k => k.Id, StringComparer.OrdinalIgnoreCase);
            var active = keysets.Values.LastOrDefault(k => k.Active && k.Unit == "sat")
                ?? throw new CashuException(CashuErrorCode.KeysetUnknown, $"mint {mint} has no active sat keyset");
            var inputs = new List<Proof>();
            ulong fee = 0;
            foreach (var p in available.OrderBy(p => keysets.TryGetValue(p.Id, out var k) && k.Active ? 1 : 0).ThenByDescending(p => p.Amount))
            {
                inputs.Add(p);
                fee = Amounts.InputFee(inputs.Select(i => keysets.TryGetValue(i.Id, out var k) ? k.InputFeePpk : 0));
                if (Sum(inputs) >= (UInt128)amount + fee)
                {
                    break;
                }
            }

            if (Sum(inputs) < (UInt128)amount + fee)
            {
                throw new InvalidOperationException($"not enough ecash at {mint} to send {amount} sat plus the mint's {fee} sat input fee");
            }

            var sendOutputs = BlindedOutputs.Create(active.Id, Amounts.Split(amount));
            var keepOutputs = BlindedOutputs.Create(active.Id, Amounts.Split(Sum(inputs) - amount - fee));
            var outputs = sendOutputs.Concat(keepOutputs).OrderBy(o => o.Amount).ToList(); // ascending, so the mint cannot tell send from keep
            var op = await store.BeginOperationAsync(mint, "swap", SerializeOutputs(outputs), [.. inputs.Select(p => p.Secret)], time.GetUtcNow(), cancellationToken);
            var response = await AbandonOnRefusalAsync(op, () => client.SwapAsync(
                new SwapRequest([.. inputs.Select(p => p with { Dleq = null })], [.. outputs.Select(o => o.Message)]), cancellationToken));
            var fresh = await client.UnblindAsync(outputs, response.Signatures, cancellationToken);
            var sendSecrets = sendOutputs.Select(o => o.Secret).ToHashSet(StringComparer.Ordinal);
            toSend = [.. fresh.Where(p => sendSecrets.Contains(p.Secret))];
            await store.CompleteAsync(op, mint, fresh, WalletProofState.Unspent, [.. inputs.Select(p => p.Secret)],
                fee > 0 ? new HistoryEntry(0, default, "swap", mint, 0, fee, null, "swap for exact change") : null, time.GetUtcNow(), cancellationToken);
        }

        var token = TokenCodec.EncodeV4(new Token(mint, "sat", toSend, memo));
        await store.ReserveAsync([.. toSend.Select(p => p.Secret)], new HistoryEntry(0, default, "send", mint, amount, 0, token, memo), time.GetUtcNow(), cancellationToken);
        return token;
    }

    /// <summary>
    /// Receives a token (<c>cashuA</c> or <c>cashuB</c>) from any mint: checks the DLEQ proofs it carries, then swaps
    /// its proofs for fresh ones at that mint (so the sender can no longer spend them). Returns the amount received
    /// after the mint's input fee. A token from a mint this wallet has not used before opens a balance there.
    /// </summary>
    public async Task<ulong> ReceiveAsync(string tokenText, CancellationToken cancellationToken)
    {
        var token = TokenCodec.Decode(tokenText);
        if (token.Unit != "sat")
        {
            throw new CashuException(CashuErrorCode.UnitNotSupported, $"this wallet holds sat; the token is in {token.Unit}");
        }

        var client = Client(token.Mint);
        var keysets = (await client.GetKeysetsAsync(cancellationToken)).Keysets;
        var resolved = token.ResolveKeysetIds([.. keysets.Select(k => k.Id)]);
        foreach (var p in resolved.Proofs.Where(p => p.Dleq is not null))
        {
            var keys = await client.GetKeysetKeysAsync(p.Id, cancellationToken);
            if (!BlindedOutputs.VerifyProofDleq(p, keys))
            {
                throw new CashuException(CashuErrorCode.ProofVerificationFailed, "a proof's DLEQ does not verify: the token is not genuine ecash of " + token.Mint);
            }
        }

        var total = Sum(resolved.Proofs);
        var feeOf = keysets.DistinctBy(k => k.Id, StringComparer.OrdinalIgnoreCase).ToDictionary(k => k.Id, k => k.InputFeePpk, StringComparer.OrdinalIgnoreCase);
        var active = keysets.LastOrDefault(k => k.Active && k.Unit == "sat")
            ?? throw new CashuException(CashuErrorCode.KeysetUnknown, $"mint {token.Mint} has no active sat keyset");
        var fee = Amounts.InputFee(resolved.Proofs.Select(p => feeOf.GetValueOrDefault(p.Id)));
        if (total <= fee)
        {
            throw new CashuException(CashuErrorCode.TransactionNotBalanced, $"the token ({total} sat) does not cover the mint's input fee ({fee} sat)");
        }

        var outputs = BlindedOutputs.Create(active.Id, Amounts.Split(total - fee));
        var op = await store.BeginOperationAsync(client.MintUrl, "receive", SerializeOutputs(outputs), [.. resolved.Proofs.Select(p => p.Secret)], time.GetUtcNow(), cancellationToken);
        var response = await AbandonOnRefusalAsync(op, () => client.SwapAsync(
            new SwapRequest([.. resolved.Proofs.Select(p => p with { Dleq = null })], [.. outputs.Select(o => o.Message)]), cancellationToken));
        var fresh = await client.UnblindAsync(outputs, response.Signatures, cancellationToken);
        await store.CompleteAsync(op, client.MintUrl, fresh, WalletProofState.Unspent, [.. resolved.Proofs.Select(p => p.Secret)],
            new HistoryEntry(0, default, "receive", client.MintUrl, total - fee, fee, null, token.Memo), time.GetUtcNow(), cancellationToken);
        return total - fee;
    }

    public Task<IReadOnlyList<HistoryEntry>> HistoryAsync(int limit, CancellationToken cancellationToken) => store.HistoryAsync(limit, cancellationToken);

    /// <summary>Asks each mint which reserved proofs were claimed by their receivers, and marks those spent.</summary>
    public async Task RefreshReservedAsync(CancellationToken cancellationToken)
    {
        foreach (var group in (await store.ProofsAsync(null, WalletProofState.Reserved, cancellationToken)).GroupBy(p => p.Mint))
        {
            var proofs = group.Select(p => p.Proof).ToList();
            var states = await Client(group.Key).CheckStateAsync([.. proofs.Select(p => Convert.ToHexStringLower(Bdhke.Y(p.Secret)))], cancellationToken);
            var spent = proofs.Zip(states.States).Where(x => x.Second.State == ProofState.Spent).Select(x => x.First.Secret).ToList();
            await store.MarkSpentAsync(spent, cancellationToken);
        }
    }

    /// <summary>
    /// Finishes requests a previous run left in flight: the mint is asked to restore the signatures of their outputs
    /// (NUT-09), those become proofs, and inputs the mint reports spent are marked spent. Best effort: an operation
    /// whose mint cannot be reached now stays recorded and is retried on the next run.
    /// </summary>
    public async Task RecoverAsync(CancellationToken cancellationToken)
    {
        foreach (var op in await store.PendingOperationsAsync(cancellationToken))
        {
            try
            {
                await RecoverAsync(op, cancellationToken);
            }
            catch (Exception ex) when (ex is HttpRequestException or CashuException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
            {
                // The mint is away or refuses today; the outputs stay recorded for the next run.
            }
        }
    }

    private async Task RecoverAsync(PendingOperation op, CancellationToken cancellationToken)
    {
        var client = Client(op.Mint);
        var outputs = DeserializeOutputs(op.OutputsJson);
        var restored = await client.RestoreAsync([.. outputs.Select(o => o.Message)], cancellationToken);
        var byBlinded = outputs.ToDictionary(o => o.Message.B, StringComparer.OrdinalIgnoreCase);
        var pairs = restored.Outputs.Zip(restored.Signatures).Where(x => byBlinded.ContainsKey(x.First.B)).ToList();
        var proofs = await client.UnblindAsync([.. pairs.Select(x => byBlinded[x.First.B])], [.. pairs.Select(x => x.Second)], cancellationToken);
        var spentInputs = new List<string>();
        if (op.InputSecrets.Count > 0)
        {
            var states = await client.CheckStateAsync([.. op.InputSecrets.Select(s => Convert.ToHexStringLower(Bdhke.Y(s)))], cancellationToken);
            if (states.States.Any(s => s.State == ProofState.Pending))
            {
                return; // a melt still paying: its change is signed once it settles, so the outputs stay recorded until then
            }

            spentInputs = [.. op.InputSecrets.Zip(states.States).Where(x => x.Second.State == ProofState.Spent).Select(x => x.First)];
        }

        await store.CompleteAsync(op.Id, op.Mint, proofs, WalletProofState.Unspent, spentInputs,
            proofs.Count > 0 ? new HistoryEntry(0, default, "recover", op.Mint, Sum(proofs), 0, null, $"restored after an interrupted {op.Kind}") : null,
            time.GetUtcNow(), cancellationToken);
    }

    /// <summary>A mint's refusal (a Cashu error) means it signed nothing: the recorded outputs are dropped before rethrowing.</summary>
    private async Task<T> AbandonOnRefusalAsync<T>(long operationId, Func<Task<T>> call)
    {
        try
        {
            return await call();
        }
        catch (CashuException)
        {
            await store.AbandonOperationAsync(operationId, CancellationToken.None);
            throw;
        }
    }

    private CashuMintClient Client(string mintUrl)
    {
        var url = Token.NormalizeMintUrl(mintUrl);
        lock (_clients)
        {
            if (!_clients.TryGetValue(url, out var client))
            {
                client = new CashuMintClient(http, url);
                _clients[url] = client;
            }

            return client;
        }
    }

    private async Task<string> PickMintAsync(ulong amount, CancellationToken cancellationToken) =>
        (await BalancesAsync(cancellationToken)).Where(b => b.Available >= amount).OrderByDescending(b => b.Available).FirstOrDefault()?.Mint
        ?? throw new InvalidOperationException($"no mint in this wallet holds {amount} sat; mint some first ('coinop wallet mint')");

    /// <summary>Largest-first selection that hits the amount exactly, or null (then the wallet swaps for change).</summary>
    private static List<Proof>? SelectExact(IEnumerable<Proof> proofs, ulong amount)
    {
        var remaining = amount;
        var chosen = new List<Proof>();
        foreach (var p in proofs.OrderByDescending(p => p.Amount))
        {
            if (p.Amount <= remaining)
            {
                chosen.Add(p);
                remaining -= p.Amount;
                if (remaining == 0)
                {
                    return chosen;
                }
            }
        }

        return null;
    }

    private static ulong Sum(IEnumerable<Proof> proofs) => Amounts.TrySum(proofs.Select(p => p.Amount), out var s) ? s : ulong.MaxValue;

    private static ulong Sum(IEnumerable<StoredProof> proofs) => Sum(proofs.Select(p => p.Proof));

    private static string SerializeOutputs(IEnumerable<PendingOutput> outputs) => BlindedOutputs.ToJson(outputs);

    private static List<PendingOutput> DeserializeOutputs(string json) => BlindedOutputs.FromJson(json);
}
