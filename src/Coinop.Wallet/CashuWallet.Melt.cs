using System.Numerics;
using Coinop.Ecash;
using Coinop.Ecash.MintApi;
using Coinop.Ecash.Tokens;
using Coinop.Ecash.Wallet;
using Coinop.Wallet.Store;

namespace Coinop.Wallet;

/// <summary>A melt the mint quoted: the invoice's amount and the most it may spend on routing (NUT-05 <c>fee_reserve</c>).</summary>
public sealed record MeltOffer(string Mint, MeltQuoteResponse Quote);

/// <summary>The outcome of a melt: PAID (with the fee it cost and the change kept) or PENDING (settled on a later run).</summary>
public sealed record MeltedEcash(string Mint, string State, ulong Amount, ulong FeePaid, ulong Change, string? Preimage);

public sealed partial class CashuWallet
{
    /// <summary>
    /// Asks a mint to quote paying <paramref name="invoice"/>: <paramref name="mintUrl"/>, or the mint of this wallet
    /// with the largest balance.
    /// </summary>
    public async Task<MeltOffer> QuoteMeltAsync(string invoice, string? mintUrl, CancellationToken cancellationToken)
    {
        var mint = mintUrl is not null ? Token.NormalizeMintUrl(mintUrl)
            : (await BalancesAsync(cancellationToken)).OrderByDescending(b => b.Available).FirstOrDefault()?.Mint
              ?? throw new InvalidOperationException("this wallet holds no ecash; mint some first ('coinop wallet mint')");
        return new MeltOffer(mint, await Client(mint).CreateMeltQuoteAsync(invoice.Trim(), cancellationToken));
    }

    /// <summary>
    /// Pays a quoted invoice with this wallet's ecash of the quote's mint: inputs covering amount, fee reserve and
    /// input fee, plus NUT-08 blank outputs through which the mint returns what routing did not use. The outputs are
    /// written down first, so a run that dies mid-melt (or a melt that answers PENDING) gets its change on a later
    /// run (<see cref="RecoverAsync(CancellationToken)"/>); a refusal leaves the inputs where they were.
    /// </summary>
    public async Task<MeltedEcash> MeltAsync(MeltOffer offer, CancellationToken cancellationToken)
    {
        var (mint, quote) = offer;
        var client = Client(mint);
        var keysets = (await client.GetKeysetsAsync(cancellationToken)).Keysets.ToDictionary(k => k.Id, StringComparer.OrdinalIgnoreCase);
        var active = keysets.Values.LastOrDefault(k => k.Active && k.Unit == "sat")
            ?? throw new CashuException(CashuErrorCode.KeysetUnknown, $"mint {mint} has no active sat keyset");
        var need = checked(quote.Amount + quote.FeeReserve);
        var available = (await store.ProofsAsync(mint, WalletProofState.Unspent, cancellationToken)).Select(p => p.Proof).ToList();
        var inputs = new List<Proof>();
        ulong fee = 0;
        foreach (var p in available.OrderByDescending(p => p.Amount))
        {
            inputs.Add(p);
            fee = Amounts.InputFee(inputs.Select(i => keysets.TryGetValue(i.Id, out var k) ? k.InputFeePpk : 0));
            if (Sum(inputs) >= (UInt128)need + fee)
            {
                break;
            }
        }

        if (Sum(inputs) < (UInt128)need + fee)
        {
            throw new InvalidOperationException(
                $"not enough ecash at {mint}: the invoice ({quote.Amount} sat) plus its fee reserve ({quote.FeeReserve} sat) and input fee ({fee} sat) need {need + fee}, the wallet holds {Sum(available)}");
        }

        // Enough blanks for any change up to the whole overpayment: one per bit of its largest value (NUT-08).
        var mostChange = Sum(inputs) - fee - quote.Amount;
        var blanks = BlindedOutputs.Create(active.Id, Enumerable.Repeat(1UL, Math.Max(1, 64 - BitOperations.LeadingZeroCount(mostChange))));
        var secrets = inputs.Select(p => p.Secret).ToList();
        var op = await store.BeginOperationAsync(mint, "melt", BlindedOutputs.ToJson(blanks), secrets, time.GetUtcNow(), cancellationToken);
        var melted = await AbandonOnRefusalAsync(op, () => client.MeltAsync(new MeltRequest
        {
            Quote = quote.Quote,
            Inputs = [.. inputs.Select(p => p with { Dleq = null })],
            Outputs = [.. blanks.Select(b => b.Message)],
        }, cancellationToken));
        if (melted.State != MeltQuoteState.Paid)
        {
            // In flight (the outputs stay recorded) or refused without an error: the inputs are the mint's to decide.
            return new MeltedEcash(mint, melted.State, quote.Amount, 0, 0, null);
        }

        var change = melted.Change is { Count: > 0 } signed ? await client.UnblindAsync(blanks, signed, cancellationToken) : [];
        var feePaid = Sum(inputs) - fee - quote.Amount - Sum(change);
        await store.CompleteAsync(op, mint, change, WalletProofState.Unspent, secrets,
            new HistoryEntry(0, default, "melt", mint, quote.Amount, feePaid + fee, null, quote.Request), time.GetUtcNow(), cancellationToken);
        return new MeltedEcash(mint, melted.State, quote.Amount, feePaid + fee, Sum(change), melted.PaymentPreimage);
    }
}
