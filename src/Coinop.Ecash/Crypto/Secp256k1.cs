using System.Diagnostics.CodeAnalysis;
using Scalar = NBitcoin.Secp256k1.Scalar;
using Native = Secp256k1Net.Secp256k1;
using NativeFlags = Secp256k1Net.Secp256k1EcFlags;

namespace Coinop.Ecash.Crypto;

/// <summary>
/// A point of secp256k1 other than infinity, held as libsecp256k1's 64-byte public key object (parsed once, so no
/// square root or inversion is paid twice). Immutable; equal when the points are equal.
/// </summary>
public sealed class CurvePoint : IEquatable<CurvePoint>
{
    private readonly byte[] _native;
    private byte[]? _compressed;

    internal CurvePoint(byte[] native) => _native = native;

    /// <summary>A point parsed from its compressed encoding, which is kept: serializing it again would give the same bytes.</summary>
    internal CurvePoint(byte[] native, byte[] compressed)
    {
        _native = native;
        _compressed = compressed;
    }

    /// <summary>libsecp256k1's public key object (valid in this process only).</summary>
    internal ReadOnlySpan<byte> Native => _native;

    /// <summary>The 33-byte SEC1 compressed encoding, computed once.</summary>
    internal ReadOnlySpan<byte> CompressedSpan => _compressed ??= Secp256k1.Serialize(_native, compressed: true);

    public bool Equals(CurvePoint? other) => other is not null && CompressedSpan.SequenceEqual(other.CompressedSpan);

    public override bool Equals(object? obj) => Equals(obj as CurvePoint);

    public override int GetHashCode() => BitConverter.ToInt32(CompressedSpan[1..5]);

    public override string ToString() => Convert.ToHexStringLower(CompressedSpan);
}

/// <summary>
/// secp256k1 for Cashu: points through libsecp256k1 itself (the native library the Secp256k1.Net package ships,
/// several times faster than a managed curve), scalars as NBitcoin.Secp256k1's
/// <see cref="Scalar"/> (arithmetic mod n). Points parse from 33-byte SEC1 compressed keys only, scalars from 32-byte
/// big-endian hex in [1, n).
/// </summary>
public static class Secp256k1
{
    private const int NativeSize = 64;

    [ThreadStatic]
    private static Native? _lib;

    /// <summary>libsecp256k1 with a context of this thread's own (contexts are cheap; their tables are static).</summary>
    private static Native Lib => _lib ??= new Native();

    /// <summary>The generator.</summary>
    public static CurvePoint G { get; } = MultiplyG(Scalar.One);

    /// <summary>k·G (libsecp256k1's constant-time generator multiplication); k must not be zero.</summary>
    public static CurvePoint MultiplyG(in Scalar k)
    {
        Span<byte> bytes = stackalloc byte[32];
        k.WriteToSpan(bytes);
        var native = new byte[NativeSize];
        return Lib.EcPubkeyCreate(native, bytes) ? new CurvePoint(native) : throw new ArgumentOutOfRangeException(nameof(k), "the scalar is zero");
    }

    /// <summary>
    /// k·P through pubkey_tweak_mul, libsecp256k1's variable-time multiplication (its time and memory accesses depend
    /// on k's digits): for public scalars only (DLEQ verification's e and s). Anything secret, the mint's keys above
    /// all, goes through <see cref="MultiplySecret"/>. k must not be zero.
    /// </summary>
    public static CurvePoint Multiply(CurvePoint point, in Scalar k)
    {
        Span<byte> bytes = stackalloc byte[32];
        k.WriteToSpan(bytes);
        var native = point.Native.ToArray();
        return Lib.EcPubkeyTweakMul(native, bytes) ? new CurvePoint(native) : throw new ArgumentOutOfRangeException(nameof(k), "the scalar is zero");
    }

    /// <summary>
    /// k·P in constant time (libsecp256k1's ECDH multiplication, <see cref="NativeEcdh"/>), for every secret scalar:
    /// the mint's private keys, DLEQ nonces, a wallet's blinding factors. A variable-time multiplication leaks the
    /// scalar's digits through timing and cache accesses (a fixed key included: a co-located process reads the table
    /// lookups), and a few bits of many nonces are enough to recover the key they sign with. About 25% slower than
    /// <see cref="Multiply"/>. k must not be zero.
    /// </summary>
    public static CurvePoint MultiplySecret(CurvePoint point, in Scalar k)
    {
        Span<byte> bytes = stackalloc byte[32];
        k.WriteToSpan(bytes);
        Span<byte> uncompressed = stackalloc byte[65];
        uncompressed[0] = 4;
        if (!NativeEcdh.Multiply(point.Native, bytes, uncompressed[1..]))
        {
            throw new ArgumentOutOfRangeException(nameof(k), "the scalar is zero");
        }

        var native = new byte[NativeSize];
        return Lib.EcPubkeyParse(native, uncompressed) ? new CurvePoint(native) : throw new InvalidOperationException("libsecp256k1 returned a point it cannot parse");
    }

    /// <summary>P + t·G (one call into libsecp256k1, variable time in t: for public t); null when the sum is infinity.</summary>
    public static CurvePoint? AddMultipleOfG(CurvePoint point, in Scalar t)
    {
        Span<byte> bytes = stackalloc byte[32];
        t.WriteToSpan(bytes);
        var native = point.Native.ToArray();
        return Lib.EcPubkeyTweakAdd(native, bytes) ? new CurvePoint(native) : null;
    }

    /// <summary>P + Q; null when the sum is infinity.</summary>
    public static CurvePoint? Add(CurvePoint p, CurvePoint q)
    {
        var native = new byte[NativeSize];
        return Lib.EcPubkeyCombine(native, [p.Native.ToArray(), q.Native.ToArray()]) ? new CurvePoint(native) : null;
    }

    public static CurvePoint Negate(CurvePoint point)
    {
        var native = point.Native.ToArray();
        return Lib.EcPubkeyNegate(native) ? new CurvePoint(native) : throw new InvalidOperationException("libsecp256k1 refused to negate a point");
    }

    /// <summary>P − Q; null when P = Q.</summary>
    public static CurvePoint? Subtract(CurvePoint p, CurvePoint q) => Add(p, Negate(q));

    /// <summary>Parses a compressed point (02/03 prefix, 33 bytes, x on the curve); rejects anything else.</summary>
    public static bool TryParsePoint(ReadOnlySpan<byte> bytes, [NotNullWhen(true)] out CurvePoint? point)
    {
        point = null;
        Span<byte> native = stackalloc byte[NativeSize];
        if (!TryParseNative(bytes, native))
        {
            return false; // half of hash_to_curve's candidates end here: nothing allocated for them
        }

        // libsecp256k1 refuses x ≥ p, so these bytes are the point's canonical encoding.
        point = new CurvePoint(native.ToArray(), bytes.ToArray());
        return true;
    }

    /// <summary>Parses a compressed point into libsecp256k1's 64-byte object.</summary>
    internal static bool TryParseNative(ReadOnlySpan<byte> bytes, Span<byte> native) =>
        bytes.Length == 33 && (bytes[0] == 2 || bytes[0] == 3) && Lib.EcPubkeyParse(native, bytes);

    /// <summary>
    /// Whether k·P is the point <paramref name="compressed"/> encodes, without allocating: k·P in constant time
    /// (<see cref="NativeEcdh"/>; k is the mint's private key), its affine x and the parity of y laid out as a
    /// compressed encoding and compared in fixed time with <paramref name="compressed"/> (a comparison that stopped at
    /// the first differing byte would tell a forger how much of a guessed C is right). An encoding that is not
    /// canonical or not on the curve never matches and is never parsed.
    /// </summary>
    internal static bool MultiplySecretEquals(ReadOnlySpan<byte> native, ReadOnlySpan<byte> k, ReadOnlySpan<byte> compressed)
    {
        if (compressed.Length != 33)
        {
            return false;
        }

        Span<byte> product = stackalloc byte[64];
        if (!NativeEcdh.Multiply(native, k, product))
        {
            return false;
        }

        Span<byte> encoded = stackalloc byte[33];
        encoded[0] = (byte)(2 | (product[63] & 1));
        product[..32].CopyTo(encoded[1..]);
        return System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(encoded, compressed);
    }

    public static bool TryParsePoint(string? hex, [NotNullWhen(true)] out CurvePoint? point)
    {
        point = null;
        Span<byte> bytes = stackalloc byte[33];
        return hex is { Length: 66 } && Convert.FromHexString(hex, bytes, out _, out var written) == System.Buffers.OperationStatus.Done && written == 33
            && TryParsePoint(bytes, out point);
    }

    public static CurvePoint ParsePoint(string hex) =>
        TryParsePoint(hex, out var p) ? p : throw new FormatException($"'{Trim(hex)}' is not a compressed secp256k1 point");

    /// <summary>Parses a 32-byte big-endian scalar in [1, n).</summary>
    public static bool TryParseScalar(string? hex, out Scalar scalar)
    {
        scalar = Scalar.Zero;
        Span<byte> bytes = stackalloc byte[32];
        if (hex is not { Length: 64 } || Convert.FromHexString(hex, bytes, out _, out var written) != System.Buffers.OperationStatus.Done || written != 32)
        {
            return false;
        }

        var k = new Scalar(bytes, out var overflow);
        if (overflow != 0 || k.IsZero)
        {
            return false;
        }

        scalar = k;
        return true;
    }

    public static Scalar ParseScalar(string hex) =>
        TryParseScalar(hex, out var k) ? k : throw new FormatException($"'{Trim(hex)}' is not a secp256k1 scalar");

    /// <summary>A scalar from any 32 bytes (a hash), reduced mod n.</summary>
    public static Scalar ScalarFromHash(ReadOnlySpan<byte> hash) => new(hash, out _);

    /// <summary>A fresh uniformly random scalar in [1, n).</summary>
    public static Scalar RandomScalar()
    {
        Span<byte> bytes = stackalloc byte[32];
        while (true)
        {
            System.Security.Cryptography.RandomNumberGenerator.Fill(bytes);
            var k = new Scalar(bytes, out var overflow);
            if (overflow == 0 && !k.IsZero)
            {
                return k;
            }
        }
    }

    public static byte[] Compressed(CurvePoint point) => point.CompressedSpan.ToArray();

    public static string CompressedHex(CurvePoint point) => Convert.ToHexStringLower(point.CompressedSpan);

    public static byte[] Uncompressed(CurvePoint point) => Serialize(point.Native, compressed: false);

    /// <summary>A scalar as 32 big-endian bytes.</summary>
    public static byte[] ScalarBytes(in Scalar k) => k.ToBytes();

    public static string ScalarHex(in Scalar k)
    {
        Span<byte> bytes = stackalloc byte[32];
        k.WriteToSpan(bytes);
        return Convert.ToHexStringLower(bytes);
    }

    internal static byte[] Serialize(ReadOnlySpan<byte> native, bool compressed)
    {
        var output = new byte[compressed ? 33 : 65];
        nuint length = (nuint)output.Length;
        return Lib.EcPubkeySerialize(output, ref length, native, compressed ? NativeFlags.Compressed : NativeFlags.Uncompressed) && length == (nuint)output.Length
            ? output
            : throw new InvalidOperationException("libsecp256k1 could not serialize a point");
    }

    private static string Trim(string? s) => s is null ? "null" : s.Length > 80 ? s[..80] + "…" : s;
}
