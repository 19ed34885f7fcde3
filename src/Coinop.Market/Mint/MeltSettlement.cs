using System.Text.Json;
using Coinop.Ecash;
using Coinop.Ecash.Crypto;
using Coinop.Ecash.MintApi;
using Coinop.Market.Mint.Lightning;
using Coinop.Storage;
using Coinop.Storage.Mint;
using static Coinop.Market.Mint.MintCore;

namespace Coinop.Market.Mint;

/// <summary>
/// Finishes melts (NUT-05, NUT-08): spends a PENDING melt's inputs and signs its change when the payment went out,
/// releases them when it definitively failed, and settles an invoice of the mint's own quote without Lightning.
/// </summary>
public sealed class MeltSettlement(
    Database database,
    MintCore core,
    MintKeysets keysets,
    IMintQuoteStore quotes,
    IMintProofStore proofs,
    TimeProvider time,
    MintMetrics metrics)
{
    /// <summary>
    /// Pays an invoice of this mint's own mint quote without Lightning: in ONE transaction the inputs are spent, the
    /// mint quote becomes PAID (so its owner can mint) and the melt PAID with change for the whole fee reserve.
    /// </summary>
    internal async Task<MeltQuoteRecord> MeltInternallyAsync(MeltQuoteRecord quote, MintQuoteRecord own, ValidInputs inputs, CancellationToken cancellationToken)
    {
        if (own.Amount != quote.Amount)
        {
            throw new CashuException(CashuErrorCode.AmountMismatch, $"the invoice asks {quote.Amount} sat but its mint quote is for {own.Amount}");
        }

        var change = await SignChangeAsync(quote, feePaid: 0, cancellationToken);
        var now = time.GetUtcNow();
        try
        {
            await database.WriteAsync(async (c, t) =>
            {
                await core.SpendAsync(c, t, inputs, pending: true, quote.Id, now, cancellationToken);
                if (!await quotes.TryStartMeltAsync(c, t, quote.Id, inputs.Amount, inputs.Fee, quote.ChangeOutputs, now, cancellationToken))
                {
                    throw new CashuException(CashuErrorCode.QuotePending, "the quote is already being paid");
                }

                if (!await quotes.MarkMintQuotePaidAsync(c, t, own.Id, now, cancellationToken))
                {
                    throw new CashuException(CashuErrorCode.InvoiceAlreadyPaid, "the invoice is already paid");
                }

                await proofs.SettlePendingAsync(c, t, quote.Id, now, cancellationToken);
                if (change.Outputs.Count > 0)
                {
                    await core.RecordSignaturesAsync(c, t, change.Outputs, change.Signatures, now, cancellationToken);
                }

                await quotes.CompleteMeltAsync(c, t, quote.Id, 0, null,
                    change.Signatures.Count > 0 ? JsonSerializer.Serialize(change.Signatures, Json) : null, now, cancellationToken);
            }, cancellationToken);
        }
        catch (Exception ex) when (Database.IsUniqueViolation(ex))
        {
            throw new CashuException(CashuErrorCode.InvoiceAlreadyPaid, "the invoice is already paid or being paid");
        }

        metrics.ProofsSpent(inputs.Proofs.Count);
        return await quotes.FindMeltQuoteAsync(quote.Id, cancellationToken) ?? quote;
    }

    /// <summary>
    /// Finishes a PENDING melt from its payment's outcome (<see cref="MeltResolution"/>): paid → inputs SPENT, change
    /// signed; definitively failed → locks released, quote UNPAID again; in flight or unknown → left PENDING. Used
    /// right after paying and by recovery.
    /// </summary>
    public async Task<MeltQuoteRecord> SettleMeltAsync(string quoteId, PaymentResult payment, CancellationToken cancellationToken)
    {
        var quote = await quotes.FindMeltQuoteAsync(quoteId, cancellationToken) ?? throw UnknownQuote();
        var action = MeltResolution.Decide(payment.State, mayPayAgain: false);
        if (quote.State != MeltQuoteState.Pending || action == MeltAction.KeepPending)
        {
            return quote;
        }

        var now = time.GetUtcNow();
        if (action == MeltAction.Settle)
        {
            var change = await SignChangeAsync(quote, payment.FeePaidSat, cancellationToken);
            await database.WriteAsync(async (c, t) =>
            {
                // The quote leaves PENDING first: a pass on another node (or the request itself) that got there first
                // settled it already, and then nothing of this one is written.
                if (!await quotes.CompleteMeltAsync(c, t, quote.Id, payment.FeePaidSat, payment.Preimage,
                    change.Signatures.Count > 0 ? JsonSerializer.Serialize(change.Signatures, Json) : null, now, cancellationToken))
                {
                    return;
                }

                await proofs.SettlePendingAsync(c, t, quote.Id, now, cancellationToken);
                if (change.Outputs.Count > 0)
                {
                    await core.RecordSignaturesAsync(c, t, change.Outputs, change.Signatures, now, cancellationToken);
                }
            }, cancellationToken);
        }
        else
        {
            await database.WriteAsync(async (c, t) =>
            {
                if (await quotes.ResetMeltAsync(c, t, quote.Id, now, cancellationToken))
                {
                    await proofs.ReleasePendingAsync(c, t, quote.Id, cancellationToken);
                }
            }, cancellationToken);
        }

        return await quotes.FindMeltQuoteAsync(quote.Id, cancellationToken) ?? quote;
    }

    private async Task<(List<ValidOutput> Outputs, List<BlindSignature> Signatures)> SignChangeAsync(MeltQuoteRecord quote, ulong feePaid, CancellationToken cancellationToken)
    {
        if (quote.ChangeOutputs is null || quote.InputAmount is not { } paidIn)
        {
            return ([], []);
        }

        var spent = (UInt128)quote.Amount + feePaid + (quote.InputFee ?? 0);
        var overpaid = paidIn > spent ? (ulong)(paidIn - spent) : 0UL;
        var blanks = JsonSerializer.Deserialize<List<BlindedMessage>>(quote.ChangeOutputs, Json) ?? [];
        var amounts = Amounts.Split(overpaid);
        var usable = Math.Min(amounts.Count, blanks.Count);
        if (usable == 0)
        {
            return ([], []);
        }

        // The payment went out: settling must not fail on change. A blank of a keyset retired meanwhile, or one signed
        // before (a wallet reusing it), gets no signature rather than leaving the melt pending for ever (NUT-08 change
        // is best effort).
        var all = (await keysets.ListAsync(cancellationToken)).ToDictionary(k => k.Record.Id, StringComparer.OrdinalIgnoreCase);
        var wellFormed = blanks.Take(usable).Where(b => Secp256k1.TryParsePoint(b.B, out _)).Select(b => Convert.FromHexString(b.B)).ToList();
        var signedBefore = (await proofs.FindSignaturesAsync(wellFormed, cancellationToken))
            .Select(r => Convert.ToHexStringLower(r.B)).ToHashSet(StringComparer.Ordinal);
        var outputs = new List<ValidOutput>();
        for (var i = 0; i < usable; i++)
        {
            if (!all.TryGetValue(blanks[i].Id, out var keyset) || !keyset.Record.Active || signedBefore.Contains(blanks[i].B.ToLowerInvariant())
                || !Secp256k1.TryParsePoint(blanks[i].B, out var point))
            {
                continue;
            }

            outputs.Add(new ValidOutput(blanks[i] with { Amount = amounts[i] }, point, keyset));
        }

        return (outputs, [.. Sign(outputs)]);
    }
}
