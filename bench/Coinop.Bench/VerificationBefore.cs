using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Coinop.Ecash;
using Coinop.Ecash.Keysets;

namespace Coinop.Bench;

/// <summary>
/// The mint's proof verification as it was before the allocation-free path and before CurveX's Legendre test (same
/// libsecp256k1 calls: hash_to_curve parsing every candidate, pubkey_tweak_mul, serialize, compare), kept here so one
/// run measures before and after side by side.
/// </summary>
public sealed class VerificationBefore(MintKeyset keyset)
{
    private static readonly byte[] Domain = "Secp256k1_HashToCurve_Cashu_"u8.ToArray();

    [ThreadStatic]
    private static Secp256k1Net.Secp256k1? _lib;

    private static Secp256k1Net.Secp256k1 Lib => _lib ??= new Secp256k1Net.Secp256k1();

    public bool Verify(Proof proof)
    {
        var y = HashToCurve(proof.Secret);
        if (!keyset.TryGetKey(proof.Amount, out var key) || proof.C is not { Length: 66 } || !Ecash.Crypto.Hex.TryDecode(proof.C, out var c))
        {
            return false;
        }

        Span<byte> k = stackalloc byte[32];
        key.PrivateKey.WriteToSpan(k);
        var product = y.ToArray(); // a new point object, as Multiply made
        if (!Lib.EcPubkeyTweakMul(product, k))
        {
            return false;
        }

        var encoded = new byte[33];
        nuint length = 33;
        return Lib.EcPubkeySerialize(encoded, ref length, product, Secp256k1Net.Secp256k1EcFlags.Compressed) && encoded.AsSpan().SequenceEqual(c);
    }

    /// <summary>hash_to_curve as before CurveX: every candidate parsed by libsecp256k1 (a square root each).</summary>
    internal static byte[] HashToCurve(string secret)
    {
        var max = Encoding.UTF8.GetMaxByteCount(secret.Length);
        Span<byte> buffer = stackalloc byte[max];
        var message = buffer[..Encoding.UTF8.GetBytes(secret, buffer)];
        var rented = ArrayPool<byte>.Shared.Rent(Domain.Length + message.Length);
        Span<byte> input = stackalloc byte[36];
        try
        {
            Domain.CopyTo(rented, 0);
            message.CopyTo(rented.AsSpan(Domain.Length));
            SHA256.HashData(rented.AsSpan(0, Domain.Length + message.Length), input[..32]);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }

        Span<byte> candidate = stackalloc byte[33];
        candidate[0] = 2;
        for (uint counter = 0; ; counter++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(input[32..], counter);
            SHA256.HashData(input, candidate[1..]);
            var native = new byte[64]; // allocated for every candidate, as TryParsePoint did
            if (Lib.EcPubkeyParse(native, candidate))
            {
                return native;
            }
        }
    }
}
