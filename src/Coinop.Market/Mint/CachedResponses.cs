using Coinop.Ecash;
using Coinop.Ecash.Crypto;
using Coinop.Ecash.MintApi;
using Coinop.Storage.Mint;

namespace Coinop.Market.Mint;

/// <summary>
/// NUT-19: a swap, mint or melt retried after its answer was lost gets the answer the first one got, not an error.
/// The cache is the mint's own durable record, shared by every market node and kept as long as the ecash is: the
/// signatures by blinded message (what NUT-09 restore serves), the spent proofs and the melt quotes. So the replay
/// is looked up only when a request is refused as already done: a swap whose inputs are all spent and outputs all
/// signed answers those signatures; a mint of an issued quote whose outputs are all signed, the same; a melt of a
/// quote that is paid (or still paying) with the same inputs, now spent (or pending), and the same blank outputs, the quote. Nothing is revealed that
/// restore and the quote's own URL do not already give.
/// </summary>
internal sealed class CachedResponses(MintSwap swap, Minting minting, Melting melting, ProofStates proofStates, IMintQuoteStore quotes)
{
    /// <summary>The endpoints announced in <c>/v1/info</c> under <c>"19"</c>.</summary>
    public static readonly (string Method, string Path)[] Endpoints = [("POST", "/v1/swap"), ("POST", "/v1/mint/bolt11"), ("POST", "/v1/melt/bolt11")];

    public async Task<SignaturesResponse> SwapAsync(SwapRequest request, CancellationToken cancellationToken)
    {
        try
        {
            return await swap.SwapAsync(request, cancellationToken);
        }
        catch (CashuException ex) when (ex.Code is CashuErrorCode.ProofsAlreadySpent or CashuErrorCode.OutputsAlreadySigned)
        {
            if (await InputsAreAsync(request.Inputs, ProofState.Spent, cancellationToken)
                && await SignaturesOfAsync(request.Outputs, cancellationToken) is { } signatures)
            {
                return new SignaturesResponse(signatures);
            }

            throw;
        }
    }

    public async Task<SignaturesResponse> MintAsync(MintRequest request, CancellationToken cancellationToken)
    {
        try
        {
            return await minting.MintAsync(request, cancellationToken);
        }
        catch (CashuException ex) when (ex.Code is CashuErrorCode.QuoteAlreadyIssued or CashuErrorCode.OutputsAlreadySigned)
        {
            if (await SignaturesOfAsync(request.Outputs, cancellationToken) is { } signatures
                && (await minting.GetMintQuoteAsync(request.Quote, cancellationToken)).State == MintQuoteState.Issued)
            {
                return new SignaturesResponse(signatures);
            }

            throw;
        }
    }

    public async Task<MeltQuoteResponse> MeltAsync(MeltRequest request, CancellationToken cancellationToken)
    {
        try
        {
            return await melting.MeltAsync(request, cancellationToken);
        }
        catch (CashuException ex) when (ex.Code is CashuErrorCode.InvoiceAlreadyPaid or CashuErrorCode.QuotePending)
        {
            var quote = await melting.GetMeltQuoteAsync(request.Quote, cancellationToken);
            if (quote.State != MeltQuoteState.Unpaid
                && await SameChangeOutputsAsync(request, cancellationToken)
                && await InputsAreAsync(request.Inputs, quote.State == MeltQuoteState.Paid ? ProofState.Spent : ProofState.Pending, cancellationToken))
            {
                return quote;
            }

            throw;
        }
    }

    /// <summary>The request's blank outputs are the ones the paying request gave (or neither gave any).</summary>
    private async Task<bool> SameChangeOutputsAsync(MeltRequest request, CancellationToken cancellationToken)
    {
        var stored = (await quotes.FindMeltQuoteAsync(request.Quote, cancellationToken))?.ChangeOutputs is { } json
            ? System.Text.Json.JsonSerializer.Deserialize<List<BlindedMessage>>(json) ?? []
            : [];
        var given = request.Outputs ?? [];
        return stored.Count == given.Count && stored.Zip(given).All(x => string.Equals(x.First.B, x.Second?.B, StringComparison.OrdinalIgnoreCase));
    }

    private async Task<bool> InputsAreAsync(IReadOnlyList<Proof>? inputs, string state, CancellationToken cancellationToken)
    {
        if (inputs is not { Count: > 0 } || inputs.Any(p => p?.Secret is null))
        {
            return false;
        }

        var states = await proofStates.CheckStateAsync(new CheckStateRequest([.. inputs.Select(p => Convert.ToHexStringLower(Bdhke.Y(p.Secret)))]), cancellationToken);
        return states.States.All(s => s.State == state);
    }

    private async Task<IReadOnlyList<BlindSignature>?> SignaturesOfAsync(IReadOnlyList<BlindedMessage>? outputs, CancellationToken cancellationToken)
    {
        if (outputs is not { Count: > 0 } || outputs.Any(o => o is null))
        {
            return null;
        }

        var restored = await proofStates.RestoreAsync(new RestoreRequest(outputs), cancellationToken);
        return restored.Signatures.Count == outputs.Count ? restored.Signatures : null;
    }
}
