using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Coinop.Ecash;
using Coinop.Ecash.Keysets;

namespace Coinop.Bench;

/// <summary>
/// The mint's proof verification as it was before k·Y went constant-time: the same hash_to_curve, then
/// pubkey_tweak_mul (libsecp256k1's variable-time multiplication), serialize, compare; kept here so one run measures
/// before and after side by side. Also hash_to_curve as it was before its per-thread SHA-256 object.
/// </summary>
public sealed class VerificationBefore(MintKeyset keyset)
{
    private static readonly byte[] Domain = "Secp256k1_HashToCurve_Cashu_"u8.ToArray();

    [ThreadStatic]
    private static Secp256k1Net.Secp256k1? _lib;

    private static Secp256k1Net.Secp256k1 Lib => _lib ??= new Secp256k1Net.Secp256k1();

    public bool Verify(Proof proof)
    {
        var y = Ecash.Crypto.Bdhke.HashToCurve(proof.Secret);
        Span<byte> c = stackalloc byte[33];
        if (!keyset.TryGetKey(proof.Amount, out var key) || proof.C is not { Length: 66 }
            || Convert.FromHexString(proof.C, c, out _, out var written) != OperationStatus.Done || written != 33)
        {
            return false;
        }

        Span<byte> k = stackalloc byte[32];
        key.PrivateKey.WriteToSpan(k);
        Span<byte> product = stackalloc byte[64];
        y.Native.CopyTo(product);
        Span<byte> encoded = stackalloc byte[33];
        nuint length = 33;
        return Lib.EcPubkeyTweakMul(product, k)
            && Lib.EcPubkeySerialize(encoded, ref length, product, Secp256k1Net.Secp256k1EcFlags.Compressed) && encoded.SequenceEqual(c);
    }

    /// <summary>The mint's side of a swap as before: C_ = kB_ by pubkey_tweak_mul (variable time), then the DLEQ proof.</summary>
    public string SignBefore(ulong amount, Ecash.Crypto.CurvePoint blinded)
    {
        Assert(keyset.TryGetKey(amount, out var key));
        var c = Ecash.Crypto.Secp256k1.Multiply(blinded, key.PrivateKey);
        var dleq = Ecash.Crypto.Dleq.Create(key.PrivateKey, key.PublicKey, blinded, c);
        return Ecash.Crypto.Secp256k1.CompressedHex(c) + Ecash.Crypto.Secp256k1.ScalarHex(dleq.E) + Ecash.Crypto.Secp256k1.ScalarHex(dleq.S);
    }

    /// <summary>A proof of change for the mint itself as before: B_ = Y + rG by pubkey_tweak_add, C = kY and C_ = kB_ both by pubkey_tweak_mul.</summary>
    public string IssueToSelfBefore(ulong amount)
    {
        Assert(keyset.TryGetKey(amount, out var key));
        var secret = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
        var r = Ecash.Crypto.Secp256k1.RandomScalar();
        var y = Ecash.Crypto.Bdhke.HashToCurve(secret);
        var blinded = Ecash.Crypto.Secp256k1.AddMultipleOfG(y, r)!;
        var blindSignature = Ecash.Crypto.Secp256k1.Multiply(blinded, key.PrivateKey);
        var c = Ecash.Crypto.Secp256k1.Multiply(y, key.PrivateKey);
        var dleq = Ecash.Crypto.Dleq.Create(key.PrivateKey, key.PublicKey, blinded, blindSignature);
        return Ecash.Crypto.Secp256k1.CompressedHex(c) + Ecash.Crypto.Secp256k1.CompressedHex(blindSignature) + Ecash.Crypto.Secp256k1.CompressedHex(blinded)
            + Ecash.Crypto.Secp256k1.ScalarHex(dleq.E) + Ecash.Crypto.Secp256k1.ScalarHex(dleq.S) + Ecash.Crypto.Secp256k1.ScalarHex(r);
    }

    private static void Assert([System.Diagnostics.CodeAnalysis.DoesNotReturnIf(false)] bool condition)
    {
        if (!condition)
        {
            throw new InvalidOperationException("the keyset has no key for this amount");
        }
    }

    /// <summary>hash_to_curve as it was before the per-thread SHA-256 object: SHA256.HashData for every hash.</summary>
    internal static Ecash.Crypto.CurvePoint HashToCurve(string secret)
    {
        var max = Encoding.UTF8.GetMaxByteCount(secret.Length);
        Span<byte> buffer = stackalloc byte[max];
        var message = buffer[..Encoding.UTF8.GetBytes(secret, buffer)];
        Span<byte> input = stackalloc byte[36];
        Span<byte> prefixed = stackalloc byte[Domain.Length + message.Length];
        Domain.CopyTo(prefixed);
        message.CopyTo(prefixed[Domain.Length..]);
        SHA256.HashData(prefixed, input[..32]);
        Span<byte> candidate = stackalloc byte[33];
        candidate[0] = 2;
        for (uint counter = 0; ; counter++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(input[32..], counter);
            SHA256.HashData(input, candidate[1..]);
            if (Ecash.Crypto.CurveX.MayHavePoint(candidate[1..]) && Ecash.Crypto.Secp256k1.TryParsePoint(candidate, out var point))
            {
                return point;
            }
        }
    }
}
