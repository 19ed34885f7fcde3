using Coinop.Ecash.MintApi;
using Coinop.Storage;
using static Coinop.Market.Mint.MintCore;

namespace Coinop.Market.Mint;

/// <summary>NUT-03 swap: spends inputs and signs outputs of the same value (less the input fee) in one store transaction.</summary>
public sealed class MintSwap(Database database, MintCore core, TimeProvider time, MintMetrics metrics)
{
    public async Task<SignaturesResponse> SwapAsync(SwapRequest request, CancellationToken cancellationToken)
    {
        Require(request.Inputs is not null && request.Outputs is not null, "inputs and outputs are required");
        var inputs = await core.ValidateInputsAsync(request.Inputs!, cancellationToken);
        var outputs = await core.ValidateOutputsAsync(request.Outputs!, cancellationToken);
        if (outputs.Count > 0 && outputs[0].Keyset.Record.Unit != inputs.Unit)
        {
            throw new CashuException(CashuErrorCode.InputsOutputsUnitMismatch, "inputs and outputs are not of the same unit");
        }

        var outputSum = SumOrThrow(outputs.Select(o => o.Message.Amount));
        if (inputs.Amount - inputs.Fee != outputSum)
        {
            throw new CashuException(CashuErrorCode.TransactionNotBalanced,
                $"inputs ({inputs.Amount}) minus fees ({inputs.Fee}) must equal outputs ({outputSum})");
        }

        var signatures = Sign(outputs);
        var now = time.GetUtcNow();
        await database.WriteAsync(async (c, t) =>
        {
            await core.SpendAsync(c, t, inputs, pending: false, meltQuoteId: null, now, cancellationToken);
            await core.RecordSignaturesAsync(c, t, outputs, signatures, now, cancellationToken);
        }, cancellationToken);
        metrics.ProofsSpent(inputs.Proofs.Count);
        metrics.SignaturesIssued(signatures.Length);
        return new SignaturesResponse(signatures);
    }
}
