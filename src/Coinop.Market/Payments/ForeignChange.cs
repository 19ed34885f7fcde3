using System.Data.Common;
using Coinop.Ecash;
using Coinop.Ecash.Tokens;
using Coinop.Storage.Payments;

namespace Coinop.Market.Payments;

/// <summary>
/// Change in the payer's own mint. A token of another accepted mint was swapped there into notes from which any change
/// up to its value can be made (<see cref="ChangeSplit"/>), kept in <c>foreign_proofs</c>; change and refunds owed for it
/// are handed back from those notes, inside the transaction that moves the ledger, with no call to that mint (so a mint
/// that is down by then changes nothing). Never in the market's own ecash: when no choice of notes makes the amount,
/// the caller keeps the value in the payer's balance instead.
/// </summary>
public sealed class ForeignChange(IForeignPaymentStore store, TimeProvider time)
{
    /// <summary>How many notes of a mint's stock one choice looks at (largest first, each at most the amount).</summary>
    private const int StockLimit = 4096;

    /// <summary>
    /// Change of <paramref name="sats"/> in <paramref name="mint"/>'s ecash as a <c>cashuB</c> token: from the notes the
    /// paying token brought (<paramref name="tokenKey"/>) if they make it, else from the market's whole stock of that
    /// mint. Null when no choice makes it.
    /// </summary>
    public async Task<string?> TakeAsync(DbConnection c, DbTransaction t, string mint, string? tokenKey, long sats, string givenFor,
        CancellationToken cancellationToken)
    {
        if (tokenKey is not null && await TryTakeAsync(c, t, mint, tokenKey, sats, givenFor, cancellationToken) is { } own)
        {
            return own;
        }

        return await TryTakeAsync(c, t, mint, null, sats, givenFor, cancellationToken);
    }

    private async Task<string?> TryTakeAsync(DbConnection c, DbTransaction t, string mint, string? tokenKey, long sats, string givenFor,
        CancellationToken cancellationToken)
    {
        var stock = await store.StockAsync(c, t, mint, tokenKey, sats, StockLimit, cancellationToken);
        if (ChangeSplit.Pick([.. stock.Select(p => (ulong)p.Amount)], (ulong)sats) is not { } picked)
        {
            return null;
        }

        var notes = picked.Select(i => stock[i]).ToList();
        if (!await store.GiveAsync(c, t, [.. notes.Select(p => p.Secret)], givenFor, time.GetUtcNow(), cancellationToken))
        {
            // Another transaction handed some of them out first (PostgreSQL): roll this one back rather than give them twice.
            throw new ForeignChangeTakenException(mint);
        }

        return TokenCodec.EncodeV4(new Token(mint, "sat",
            [.. notes.Select(p => new Proof { Amount = (ulong)p.Amount, Id = p.KeysetId, Secret = p.Secret, C = p.C })]));
    }
}

/// <summary>Notes chosen for change were handed out by a concurrent transaction: this one rolls back (and may be tried again).</summary>
public sealed class ForeignChangeTakenException(string mint) : Exception($"change of {mint} was handed out concurrently");
