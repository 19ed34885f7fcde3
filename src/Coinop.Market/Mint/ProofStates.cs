using Coinop.Ecash;
using Coinop.Ecash.Crypto;
using Coinop.Ecash.MintApi;
using Coinop.Storage.Mint;
using Microsoft.Extensions.Options;
using static Coinop.Market.Mint.MintCore;

namespace Coinop.Market.Mint;

/// <summary>Answers about proofs and signatures the mint holds: proof states (NUT-07) and restoring signatures (NUT-09).</summary>
public sealed class ProofStates(IMintProofStore proofs, IOptions<MintOptions> mintOptions)
{
    private readonly MintOptions _options = mintOptions.Value;

    // ---- NUT-07 ----

    public async Task<CheckStateResponse> CheckStateAsync(CheckStateRequest request, CancellationToken cancellationToken)
    {
        Require(request.Ys is not null, "Ys is required");
        if (request.Ys!.Count > _options.MaxInputs)
        {
            throw new CashuException(CashuErrorCode.MaxInputsExceeded, $"at most {_options.MaxInputs} Ys per request");
        }

        var ys = request.Ys.Select(y => Secp256k1.TryParsePoint(y, out _) ? Convert.FromHexString(y) : throw BadRequest($"Y '{Clip(y)}' is not a compressed point")).ToList();
        var states = (await proofs.StatesAsync(ys, cancellationToken)).ToDictionary(s => Convert.ToHexStringLower(s.Y));
        return new CheckStateResponse([.. request.Ys.Select(y => states.TryGetValue(y.ToLowerInvariant(), out var s)
            ? new ProofStateEntry(y, s.State, s.Witness)
            : new ProofStateEntry(y, ProofState.Unspent, null))]);
    }

    // ---- NUT-09 ----

    public async Task<RestoreResponse> RestoreAsync(RestoreRequest request, CancellationToken cancellationToken)
    {
        Require(request.Outputs is not null && request.Outputs.All(o => o is not null), "outputs are required");
        if (request.Outputs!.Count > _options.MaxOutputs)
        {
            throw new CashuException(CashuErrorCode.MaxOutputsExceeded, $"at most {_options.MaxOutputs} outputs per request");
        }

        var bs = request.Outputs.Select(o => Secp256k1.TryParsePoint(o.B, out _) ? Convert.FromHexString(o.B) : throw BadRequest($"B_ '{Clip(o.B)}' is not a compressed point")).ToList();
        var found = (await proofs.FindSignaturesAsync(bs, cancellationToken)).ToDictionary(s => Convert.ToHexStringLower(s.B));
        var outputs = new List<BlindedMessage>();
        var signatures = new List<BlindSignature>();
        foreach (var o in request.Outputs)
        {
            if (found.TryGetValue(o.B.ToLowerInvariant(), out var s))
            {
                outputs.Add(o with { Amount = s.Amount, Id = s.KeysetId });
                signatures.Add(new BlindSignature { Amount = s.Amount, Id = s.KeysetId, C = s.C, Dleq = new DleqProof { E = s.DleqE, S = s.DleqS } });
            }
        }

        return new RestoreResponse(outputs, signatures);
    }
}
