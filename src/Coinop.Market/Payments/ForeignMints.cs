using System.Data.Common;
using Coinop.Ecash;
using Coinop.Ecash.MintApi;
using Coinop.Ecash.MintClient;
using Coinop.Ecash.Wallet;
using Coinop.Storage;
using Coinop.Storage.Payments;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Coinop.Market.Payments;

/// <summary>Credits what a redeemed token is worth, inside the transaction that records the redemption.</summary>
public delegate Task<TokenAcceptance> CreditCallback(DbConnection connection, DbTransaction transaction, string tokenKey, string mint, long creditedMsat,
    CancellationToken cancellationToken);

/// <summary>
/// Redeems tokens of the other mints the market accepts (<c>--accept-mint</c>): the token's proofs are swapped at
/// their mint for fresh ones only the market knows, then kept in the store (<c>foreign_proofs</c>). The fresh notes are
/// split so that any change can be made from them (<see cref="ChangeSplit"/>): the consumer's change and refunds come
/// back in this mint's ecash without asking it again (<see cref="ForeignChange"/>). The blinded
/// outputs are written down before the swap, so a node that dies mid-swap recovers the fresh ecash with NUT-09
/// restore and credits it exactly once (to the balance of the paying token, as its request is gone).
/// </summary>
public sealed class ForeignMints : IDisposable
{
    private readonly Database _database;
    private readonly IForeignPaymentStore _store;
    private readonly NodeIdentity _node;
    private readonly TimeProvider _time;
    private readonly ILogger<ForeignMints> _logger;
    private readonly HttpClient _http;

    // One client per accepted mint, so the keyset keys it fetched and checked against their ids are fetched once.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, CashuMintClient> _clients = new(StringComparer.Ordinal);

    public ForeignMints(Database database, IForeignPaymentStore store, NodeIdentity node, IOptions<PaymentsOptions> options, TimeProvider time,
        ILogger<ForeignMints> logger)
    {
        _database = database;
        _store = store;
        _node = node;
        _time = time;
        _logger = logger;
        _http = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) }) { Timeout = options.Value.ForeignMintTimeout };
    }

    public async Task<TokenAcceptance> RedeemAsync(CheckedToken token, CreditCallback credit, CancellationToken cancellationToken)
    {
        var client = Client(token.Mint);
        try
        {
            var keysets = (await client.GetKeysetsAsync(cancellationToken)).Keysets;
            Ecash.Tokens.Token resolved;
            try
            {
                resolved = token.Token.ResolveKeysetIds([.. keysets.Select(k => k.Id)]);
            }
            catch (FormatException ex)
            {
                return TokenAcceptance.Refuse(CashuErrorCode.KeysetUnknown, ex.Message);
            }

            var active = keysets.LastOrDefault(k => k.Active && k.Unit == "sat");
            if (active is null)
            {
                return TokenAcceptance.Refuse(CashuErrorCode.KeysetUnknown, $"the mint {token.Mint} has no active sat keyset");
            }

            var fees = keysets.ToDictionary(k => k.Id, k => k.InputFeePpk, StringComparer.OrdinalIgnoreCase);
            var fee = Amounts.InputFee(resolved.Proofs.Select(p => fees.GetValueOrDefault(p.Id)));
            if ((ulong)token.AmountSat <= fee)
            {
                return TokenAcceptance.Refuse(CashuErrorCode.TransactionNotBalanced, $"the token ({token.AmountSat} sat) does not cover its mint's input fee ({fee} sat)");
            }

            var outputs = BlindedOutputs.Create(active.Id, ChangeSplit.Split((ulong)token.AmountSat - fee));
            var now = _time.GetUtcNow();
            var record = new ForeignPaymentRecord(token.Key, token.Mint, token.Text, token.AmountSat, BlindedOutputs.ToJson(outputs), _node.NodeId,
                ForeignPaymentState.Pending, now, now);
            if (!await _store.TryStartAsync(record, cancellationToken))
            {
                return await _store.FindAsync(token.Key, cancellationToken) is { State: ForeignPaymentState.Credited }
                    ? TokenAcceptance.Refuse(CashuErrorCode.ProofsAlreadySpent, "this token was already redeemed")
                    : TokenAcceptance.Refuse(CashuErrorCode.ProofsPending, "this token is being redeemed");
            }

            SignaturesResponse signed;
            try
            {
                signed = await client.SwapAsync(new SwapRequest([.. resolved.Proofs.Select(p => p with { Dleq = null })], [.. outputs.Select(o => o.Message)]),
                    cancellationToken);
            }
            catch (CashuException ex)
            {
                // The mint refused: it signed nothing, the consumer keeps (or never had) the ecash.
                await _store.TryFailAsync(token.Key, _time.GetUtcNow(), CancellationToken.None);
                return TokenAcceptance.Refuse(ex.Code, $"the mint {token.Mint} refused the token: {ex.Detail}");
            }
            catch (Exception ex) when (IsUnavailable(ex, cancellationToken))
            {
                PaymentsLog.ForeignSwapUnknown(_logger, token.Mint, ex);
                return TokenAcceptance.Unavailable(token.Mint);
            }

            return await CreditAsync(client, token.Key, outputs, signed.Signatures, credit);
        }
        catch (Exception ex) when (IsUnavailable(ex, cancellationToken))
        {
            return TokenAcceptance.Unavailable(token.Mint);
        }
    }

    /// <summary>
    /// Resolves the PENDING redemptions of this node (or of <paramref name="nodeId"/>, a dead one) last touched before <paramref name="before"/>: the mint is asked to
    /// restore the signatures of the outputs written down; if it signed them the ecash is kept and credited through
    /// <paramref name="credit"/>, otherwise the swap never happened and the redemption is FAILED (the consumer still
    /// holds the token, or spent it elsewhere).
    /// </summary>
    public async Task RecoverAsync(DateTimeOffset before, CreditCallback credit, CancellationToken cancellationToken, string? nodeId = null)
    {
        foreach (var pending in await _store.PendingAsync(nodeId ?? _node.NodeId, before, cancellationToken))
        {
            try
            {
                await RecoverOneAsync(pending, credit, cancellationToken);
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
            {
                // One mint answering garbage (a 200 that is not JSON, absurd amounts) must not stop the recovery of every
                // other redemption: this one stays PENDING and the next sweep asks that mint again.
                PaymentsLog.ForeignSwapUnknown(_logger, pending.Mint, ex);
            }
        }
    }

    private async Task RecoverOneAsync(ForeignPaymentRecord pending, CreditCallback credit, CancellationToken cancellationToken)
    {
        var client = Client(pending.Mint);
        var outputs = BlindedOutputs.FromJson(pending.Outputs);
        RestoreResponse restored;
        try
        {
            restored = await client.RestoreAsync([.. outputs.Select(o => o.Message)], cancellationToken);
        }
        catch (Exception ex) when (IsUnavailable(ex, cancellationToken) || ex is CashuException)
        {
            PaymentsLog.ForeignSwapUnknown(_logger, pending.Mint, ex);
            return; // that mint is away: the next sweep asks again
        }

        var byBlinded = outputs.ToDictionary(o => o.Message.B, StringComparer.OrdinalIgnoreCase);
        var pairs = restored.Outputs.Zip(restored.Signatures).Where(x => byBlinded.ContainsKey(x.First.B)).ToList();
        if (pairs.Count == 0)
        {
            await _store.TryFailAsync(pending.TokenKey, _time.GetUtcNow(), cancellationToken);
            PaymentsLog.ForeignRecovered(_logger, pending.Mint, "the mint never signed; nothing was taken");
            return;
        }

        var outcome = await CreditAsync(client, pending.TokenKey, [.. pairs.Select(x => byBlinded[x.First.B])], [.. pairs.Select(x => x.Second)], credit);
        PaymentsLog.ForeignRecovered(_logger, pending.Mint, $"{outcome.CreditedMsat} msat credited");
    }

    public void Dispose() => _http.Dispose();

    private CashuMintClient Client(string mint) => _clients.GetOrAdd(Coinop.Ecash.Tokens.Token.NormalizeMintUrl(mint), url => new CashuMintClient(_http, url));

    private async Task<TokenAcceptance> CreditAsync(CashuMintClient client, string tokenKey, IReadOnlyList<PendingOutput> outputs,
        IReadOnlyList<BlindSignature> signatures, CreditCallback credit)
    {
        List<Proof> fresh;
        try
        {
            // The mint signs the amounts we asked for, or nothing: a signature for another amount (its own keys make it
            // "valid") would credit whatever it likes, up to an overflow.
            for (var i = 0; i < Math.Min(outputs.Count, signatures.Count); i++)
            {
                if (signatures[i].Amount != outputs[i].Message.Amount)
                {
                    throw new CashuException(CashuErrorCode.ProofVerificationFailed,
                        $"the mint signed {signatures[i].Amount} sat for an output of {outputs[i].Message.Amount} sat");
                }
            }

            fresh = await client.UnblindAsync(outputs, signatures, CancellationToken.None);
        }
        catch (CashuException ex)
        {
            PaymentsLog.ForeignSignaturesInvalid(_logger, client.MintUrl, ex);
            await _store.TryFailAsync(tokenKey, _time.GetUtcNow(), CancellationToken.None);
            return TokenAcceptance.Refuse(ex.Code, $"the mint {client.MintUrl} returned signatures that do not verify");
        }

        var msat = checked((long)fresh.Aggregate(0UL, (sum, p) => checked(sum + p.Amount)) * 1000);
        var records = fresh.Select(p => new ForeignProofRecord(p.Secret, client.MintUrl, p.Id, (long)p.Amount, p.C, tokenKey)).ToList();
        TokenAcceptance? outcome = null;
        await _database.WriteAsync(async (c, t) =>
        {
            outcome = null;
            if (await _store.TryCreditAsync(c, t, tokenKey, records, msat, _time.GetUtcNow(), CancellationToken.None))
            {
                outcome = await credit(c, t, tokenKey, client.MintUrl, msat, CancellationToken.None);
            }
        }, CancellationToken.None);
        return outcome ?? TokenAcceptance.Refuse(CashuErrorCode.ProofsPending, "this token is being redeemed");
    }

    // A mint that answers something that is not its API (a 200 with HTML) is as good as away: what it did is unknown.
    private static bool IsUnavailable(Exception ex, CancellationToken cancellationToken) =>
        ex is HttpRequestException or System.Text.Json.JsonException || (ex is TaskCanceledException && !cancellationToken.IsCancellationRequested);
}
