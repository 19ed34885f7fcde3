using System.Data.Common;
using Coinop.Ecash;
using Coinop.Ecash.Keysets;
using Coinop.Ecash.MintApi;
using Coinop.Ecash.Tokens;
using Coinop.Market.Hosting;
using Coinop.Storage;
using static Coinop.Market.Mint.MintCore;

namespace Coinop.Market.Mint;

/// <summary>The outcome of <see cref="CashuMint.RedeemAsync"/>: the proofs' total and the mint's input fee, or a Cashu error.</summary>
public sealed record RedeemResult(ulong Amount, ulong InputFee, int? ErrorCode = null, string? Detail = null)
{
    public bool Succeeded => ErrorCode is null;

    /// <summary>What the proofs are worth to the market after the input fee.</summary>
    public ulong NetAmount => Amount - InputFee;
}

/// <summary>Ecash the mint issued to the market itself: the proofs and the same as a <c>cashuB</c> token.</summary>
public sealed record IssuedEcash(IReadOnlyList<Proof> Proofs, string Token, ulong Amount);

/// <summary>Ecash made but not yet recorded as issued (<see cref="CashuMint.PrepareIssueAsync"/>).</summary>
public sealed class PreparedEcash
{
    internal PreparedEcash(LoadedKeyset keyset, IReadOnlyList<SelfIssuedProof> made)
    {
        Keyset = keyset;
        Made = made;
    }

    public ulong Amount => Made.Aggregate(0UL, (sum, m) => checked(sum + m.Proof.Amount));

    internal LoadedKeyset Keyset { get; }

    internal IReadOnlyList<SelfIssuedProof> Made { get; }
}

/// <summary>Runs inside the transaction that spends proofs, so its writes commit or roll back with the spend.</summary>
public delegate Task SpendCallback(DbConnection connection, DbTransaction transaction, RedeemResult spent, CancellationToken cancellationToken);

/// <summary>
/// The market's Cashu mint as the payment layer uses it: <see cref="RedeemAsync"/> takes payment in this mint's
/// ecash, <see cref="IssueAsync(ulong, CancellationToken)"/> hands out change, refunds and payouts. Spending and
/// issuing go through <see cref="MintCore"/> in ONE store transaction, so a double spend or a double issue is
/// impossible. The NUTs behind <c>/mint</c> are <see cref="MintInfo"/>, <see cref="MintSwap"/>, <see cref="Minting"/>,
/// <see cref="Melting"/> and <see cref="ProofStates"/>.
/// </summary>
public sealed class CashuMint(
    Database database,
    MintCore core,
    MintKeysets keysets,
    MarketOptions marketOptions,
    Microsoft.AspNetCore.Hosting.Server.IServer server,
    TimeProvider time,
    MintMetrics metrics)
{
    /// <summary>This mint's URL as wallets should put it in tokens.</summary>
    /// <remarks>Without <c>--public-url</c> it is the address Kestrel actually bound (which differs from the option with port 0).</remarks>
    public string MintUrl =>
        (marketOptions.PublicUrl?.TrimEnd('/')
         ?? server.Features.Get<Microsoft.AspNetCore.Hosting.Server.Features.IServerAddressesFeature>()?.Addresses.FirstOrDefault()?.TrimEnd('/')
         ?? marketOptions.EffectivePublicUrl) + "/mint";
    /// <summary>
    /// Takes payment in this mint's ecash: verifies the proofs (signatures, known sat keyset, no duplicate secrets,
    /// valid amounts, no spending conditions) and marks them SPENT in one store transaction. When
    /// <paramref name="onSpent"/> is given it runs inside that same transaction (e.g. to credit a ledger), so the
    /// spend and the credit commit together or not at all; if it throws, nothing is spent and the exception
    /// propagates. Returns the amount and input fee, or the Cashu error code (e.g. 11001 for a double spend).
    /// </summary>
    public async Task<RedeemResult> RedeemAsync(IReadOnlyList<Proof> proofsToSpend, SpendCallback? onSpent, CancellationToken cancellationToken)
    {
        try
        {
            var inputs = await core.ValidateInputsAsync(proofsToSpend, cancellationToken);
            var result = new RedeemResult(inputs.Amount, inputs.Fee);
            await database.WriteAsync(async (c, t) =>
            {
                await core.SpendAsync(c, t, inputs, pending: false, meltQuoteId: null, time.GetUtcNow(), cancellationToken);
                if (onSpent is not null)
                {
                    await onSpent(c, t, result, cancellationToken);
                }
            }, cancellationToken);
            metrics.ProofsSpent(inputs.Proofs.Count);
            return result;
        }
        catch (CashuException ex)
        {
            return new RedeemResult(0, 0, ex.Code, ex.Detail);
        }
    }

    /// <summary>Issues fresh ecash of the active keyset worth <paramref name="amount"/> sat to the market itself, in its own transaction.</summary>
    public async Task<IssuedEcash> IssueAsync(ulong amount, CancellationToken cancellationToken)
    {
        var prepared = await PrepareIssueAsync(amount, cancellationToken);
        return await database.WriteAsync((c, t) => IssueAsync(c, t, prepared, cancellationToken), cancellationToken);
    }

    /// <summary>
    /// As <see cref="IssueAsync(ulong, CancellationToken)"/> inside the caller's transaction (e.g. the one that debits a
    /// balance): the signatures are recorded there, so if it rolls back the ecash was never issued in the store's eyes.
    /// The returned proofs carry DLEQ proofs with their blinding factors, so any receiving wallet can check them.
    /// </summary>
    public async Task<IssuedEcash> IssueAsync(DbConnection connection, DbTransaction transaction, ulong amount, CancellationToken cancellationToken) =>
        await IssueAsync(connection, transaction, await PrepareIssueAsync(amount, cancellationToken), cancellationToken);

    /// <summary>
    /// The elliptic-curve work of issuing <paramref name="amount"/> sat to the market (about 0.3 ms a proof), done
    /// before the transaction that records it so the store's write lock is not held meanwhile. The mint makes the
    /// proofs for itself (<see cref="MintKeyset.IssueToSelf"/>) rather than going through a wallet's blind-sign-unblind
    /// round trip with itself.
    /// </summary>
    public async Task<PreparedEcash> PrepareIssueAsync(ulong amount, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfZero(amount);
        return PrepareIssue(await keysets.ActiveAsync(cancellationToken), Amounts.Split(amount));
    }

    /// <summary>One proof per amount of <paramref name="amounts"/> (each a power of two) with the keyset at hand: CPU work only, for callers that choose where it runs.</summary>
    public static PreparedEcash PrepareIssue(LoadedKeyset keyset, IEnumerable<ulong> amounts)
    {
        return new PreparedEcash(keyset, [.. amounts.Select(keyset.Keys.IssueToSelf)]);
    }

    /// <summary>Records prepared ecash as issued inside the caller's transaction, as a <c>cashuB</c> token too; fails if its keyset was retired meanwhile.</summary>
    public async Task<IssuedEcash> IssueAsync(DbConnection connection, DbTransaction transaction, PreparedEcash prepared, CancellationToken cancellationToken)
    {
        var issued = await RecordIssuedAsync(connection, transaction, prepared, cancellationToken);
        return new IssuedEcash(issued, TokenCodec.EncodeV4(new Token(MintUrl, MintKeysets.Unit, issued)), prepared.Amount);
    }

    /// <summary>Records prepared ecash as issued inside the caller's transaction and returns its proofs.</summary>
    public async Task<IReadOnlyList<Proof>> RecordIssuedAsync(DbConnection connection, DbTransaction transaction, PreparedEcash prepared, CancellationToken cancellationToken)
    {
        var outputs = prepared.Made.Select(m => new ValidOutput(m.Message, m.Blinded, prepared.Keyset)).ToList();
        await core.RecordSignaturesAsync(connection, transaction, outputs, [.. prepared.Made.Select(m => m.Signature)], time.GetUtcNow(), cancellationToken);
        metrics.SignaturesIssued(outputs.Count);
        return [.. prepared.Made.Select(m => m.Proof)];
    }

    /// <summary>Resolves the keyset ids of a token for this mint (short V4 ids to full ones).</summary>
    public async Task<Token> ResolveTokenAsync(Token token, CancellationToken cancellationToken)
    {
        string? problem = null;
        Token? Resolve(IReadOnlyList<LoadedKeyset> known)
        {
            try
            {
                return token.ResolveKeysetIds([.. known.Select(k => k.Record.Id)]);
            }
            catch (FormatException ex)
            {
                problem = ex.Message;
                return null;
            }
        }

        return await keysets.ForInputsAsync(Resolve, cancellationToken) ?? throw new CashuException(CashuErrorCode.KeysetUnknown, problem!);
    }
}
