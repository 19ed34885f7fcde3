using NBitcoin.Secp256k1;

namespace Coinop.Ecash.Lightning;

/// <summary>
/// The payee's signature over a BOLT 11 invoice: verified against the <c>n</c> field when there is one (low-S only),
/// else the payee's key is recovered from it.
/// </summary>
internal static class Bolt11Signature
{
    /// <summary>Checks <paramref name="signature"/> (R || S || recovery id) over <paramref name="digest"/>; the payee's compressed key, or why not.</summary>
    public static bool TryCheck(byte[] digest, byte[] signature, int recoveryId, byte[]? nodeId, out byte[] payee, out string? error)
    {
        payee = [];
        if (nodeId is not null)
        {
            // With an explicit payee key: verify, and refuse a high-S signature (BOLT 11).
            if (!ECPubKey.TryCreate(nodeId, Context.Instance, out _, out var key) || key is null)
            {
                error = "the payee key (tag n) is not a valid public key";
                return false;
            }

            if (!SecpECDSASignature.TryCreateFromCompact(signature.AsSpan(0, 64), out var sig) || sig is null)
            {
                error = "the signature is malformed";
                return false;
            }

            if (sig.s.IsHigh)
            {
                error = "the signature is not low-S";
                return false;
            }

            if (!key.SigVerify(sig, digest))
            {
                error = "the signature does not match the payee key";
                return false;
            }

            payee = nodeId;
            error = null;
            return true;
        }

        // Recovery accepts a high-S signature (BOLT 11): as (r, n - s) it recovers the same key with the other parity.
        var compact = signature.AsSpan(0, 64).ToArray();
        if (!SecpECDSASignature.TryCreateFromCompact(compact, out var plain) || plain is null)
        {
            error = "the signature is malformed";
            return false;
        }

        if (plain.s.IsHigh && plain.TryNormalize(out var low) && low is not null)
        {
            low.WriteCompactToSpan(compact);
            recoveryId ^= 1;
        }

        if (!SecpRecoverableECDSASignature.TryCreateFromCompact(compact, recoveryId, out var recoverable) || recoverable is null
            || !ECPubKey.TryRecover(Context.Instance, recoverable, digest, out var recovered) || recovered is null)
        {
            error = "the signature is not recoverable";
            return false;
        }

        payee = recovered.ToBytes(compressed: true);
        error = null;
        return true;
    }
}
