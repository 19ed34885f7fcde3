using System.Security.Cryptography;
using Coinop.Ecash.Crypto;
using Coinop.Ecash.Keysets;
using Coinop.Ecash.MintApi;
using Scalar = NBitcoin.Secp256k1.Scalar;

namespace Coinop.Ecash.Wallet;

/// <summary>An output a wallet created: the secret and blinding factor it must keep to unblind the mint's signature.</summary>
public sealed record PendingOutput(ulong Amount, string KeysetId, string Secret, Scalar R, BlindedMessage Message);

/// <summary>
/// The wallet side of BDHKE: makes outputs (random 32-byte hex secrets, random blinding factors) and turns the
/// mint's blind signatures into proofs, verifying each DLEQ proof first (NUT-12: a failed DLEQ is rejected).
/// </summary>
public static class BlindedOutputs
{
    /// <summary>New outputs of <paramref name="keysetId"/> for the given amounts (in that order).</summary>
    public static List<PendingOutput> Create(string keysetId, IEnumerable<ulong> amounts)
    {
        var outputs = new List<PendingOutput>();
        foreach (var amount in amounts)
        {
            var secret = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
            var r = Secp256k1.RandomScalar();
            var b = Bdhke.Blind(secret, r);
            outputs.Add(new PendingOutput(amount, keysetId, secret, r,
                new BlindedMessage { Amount = amount, Id = keysetId, B = Secp256k1.CompressedHex(b) }));
        }

        return outputs;
    }

    /// <summary>
    /// Outputs as JSON with their secrets and blinding factors: what a wallet (or the market redeeming another mint's
    /// ecash) writes down before asking a mint to sign, so the signatures can be restored (NUT-09) after a crash.
    /// </summary>
    public static string ToJson(IEnumerable<PendingOutput> outputs) =>
        System.Text.Json.JsonSerializer.Serialize(outputs.Select(o => new SavedOutput(o.Amount, o.KeysetId, o.Secret, Secp256k1.ScalarHex(o.R), o.Message)));

    /// <summary>Reads outputs written by <see cref="ToJson"/>.</summary>
    public static List<PendingOutput> FromJson(string json) =>
        [.. (System.Text.Json.JsonSerializer.Deserialize<List<SavedOutput>>(json) ?? []).Select(o => new PendingOutput(o.Amount, o.KeysetId, o.Secret, Secp256k1.ParseScalar(o.R), o.Message))];

    /// <summary>
    /// Unblinds <paramref name="signatures"/> (one per output, same order; a mint may assign amounts as for NUT-08
    /// change) with the keys of each signature's keyset. Throws <see cref="CashuException"/> when a signature is
    /// malformed, its amount has no key, or its DLEQ proof is missing (when <paramref name="requireDleq"/>) or wrong.
    /// Only a mint unblinding signatures it just made itself may skip the DLEQ check (<paramref name="verifyDleq"/>
    /// false): the proofs are kept for the receiver, who checks them.
    /// </summary>
    public static List<Proof> Unblind(IReadOnlyList<PendingOutput> outputs, IReadOnlyList<BlindSignature> signatures,
        Func<string, KeysetKeys?> keysOf, bool requireDleq = true, bool verifyDleq = true)
    {
        if (signatures.Count > outputs.Count)
        {
            throw new CashuException(CashuErrorCode.BadRequest, "the mint returned more signatures than outputs");
        }

        var proofs = new List<Proof>(signatures.Count);
        for (var i = 0; i < signatures.Count; i++)
        {
            var sig = signatures[i];
            var output = outputs[i];
            var keys = keysOf(sig.Id) ?? throw new CashuException(CashuErrorCode.KeysetUnknown, $"the mint signed with unknown keyset {sig.Id}");
            if (!keys.Points.TryGetValue(sig.Amount, out var mintKey))
            {
                throw new CashuException(CashuErrorCode.ProofVerificationFailed, $"keyset {sig.Id} has no key for amount {sig.Amount}");
            }

            if (!Secp256k1.TryParsePoint(sig.C, out var blindSignature) || !Secp256k1.TryParsePoint(output.Message.B, out var blinded))
            {
                throw new CashuException(CashuErrorCode.ProofVerificationFailed, "the mint returned a malformed signature");
            }

            DleqProof? dleq = null;
            if (sig.Dleq is { } d)
            {
                if (verifyDleq && (!Secp256k1.TryParseScalar(d.E, out var e) || !Secp256k1.TryParseScalar(d.S, out var s)
                    || !Dleq.Verify(mintKey, blinded, blindSignature, new DleqValues(e, s))))
                {
                    throw new CashuException(CashuErrorCode.ProofVerificationFailed, "the mint's DLEQ proof does not verify: signature rejected");
                }

                dleq = d with { R = Secp256k1.ScalarHex(output.R) };
            }
            else if (requireDleq)
            {
                throw new CashuException(CashuErrorCode.ProofVerificationFailed, "the mint returned a signature without a DLEQ proof");
            }

            var c = Bdhke.Unblind(blindSignature, output.R, mintKey)
                ?? throw new CashuException(CashuErrorCode.ProofVerificationFailed, "the mint's signature unblinds to nothing: signature rejected");
            proofs.Add(new Proof { Amount = sig.Amount, Id = sig.Id, Secret = output.Secret, C = Secp256k1.CompressedHex(c), Dleq = dleq });
        }

        return proofs;
    }

    /// <summary>Checks the DLEQ a proof carries (sender to receiver, NUT-12); true when it verifies, false when absent or wrong.</summary>
    public static bool VerifyProofDleq(Proof proof, KeysetKeys keys)
    {
        return proof.Dleq is { R: not null } d
            && keys.Points.TryGetValue(proof.Amount, out var mintKey)
            && Secp256k1.TryParsePoint(proof.C, out var c)
            && Secp256k1.TryParseScalar(d.E, out var e)
            && Secp256k1.TryParseScalar(d.S, out var s)
            && Secp256k1.TryParseScalar(d.R, out var r)
            && Dleq.VerifyProof(mintKey, proof.Secret, c, new DleqValues(e, s), r);
    }
}

/// <summary>The stored form of a <see cref="PendingOutput"/> (the blinding factor as hex).</summary>
internal sealed record SavedOutput(ulong Amount, string KeysetId, string Secret, string R, BlindedMessage Message);
