using System.Buffers.Binary;
using System.Numerics;
using FE = NBitcoin.Secp256k1.FE;

namespace Coinop.Ecash.Crypto;

/// <summary>
/// Which x-coordinates have a point on secp256k1, decided without a square root: x must be below p and x³ + 7 a
/// square mod p, i.e. its Legendre symbol not −1. hash_to_curve throws away half of its candidates; a libsecp256k1
/// parse finds that out with a full square root (~4.7 µs), this with a binary Jacobi symbol (a shift-and-subtract
/// loop, about a fifth of that). It only ever rules a candidate out: a candidate it lets through is still parsed by
/// libsecp256k1, which has the last word, so a mistake here could only change which point hash_to_curve picks (the
/// Cashu vectors and the property test against parsing every candidate would show it), never accept a bad one.
/// </summary>
internal static class CurveX
{
    private static readonly FE Seven = new(7);

    // p = 2^256 − 2^32 − 977, as four 64-bit limbs, least significant first.
    private const ulong P0 = 0xFFFFFFFEFFFFFC2F;

    /// <summary>False when no point has this x (x ≥ p, or x³ + 7 not a square mod p); true when one may (then parse it).</summary>
    public static bool MayHavePoint(ReadOnlySpan<byte> x)
    {
        if (x.Length != 32 || !FE.TryCreate(x, out var fe))
        {
            return false;
        }

        var rhs = (fe.Sqr() * fe) + Seven;
        Span<byte> bytes = stackalloc byte[32];
        rhs.NormalizeVariable().WriteToSpan(bytes);
        return Jacobi(
            BinaryPrimitives.ReadUInt64BigEndian(bytes[24..]), BinaryPrimitives.ReadUInt64BigEndian(bytes[16..]),
            BinaryPrimitives.ReadUInt64BigEndian(bytes[8..]), BinaryPrimitives.ReadUInt64BigEndian(bytes)) != -1;
    }

    /// <summary>
    /// The Jacobi symbol (a | p) of a &lt; p given as four limbs (least significant first): 1, −1, or 0 when a = 0.
    /// Binary algorithm: strip factors of two from the top (each odd count flips the sign when p ≡ 3, 5 mod 8), keep
    /// the larger odd number on top (swapping flips the sign when both are 3 mod 4: quadratic reciprocity), subtract.
    /// Once both fit in 128 and then 64 bits the loop continues on those (most of the steps).
    /// </summary>
    internal static int Jacobi(ulong a0, ulong a1, ulong a2, ulong a3)
    {
        ulong n0 = P0, n1 = ulong.MaxValue, n2 = ulong.MaxValue, n3 = ulong.MaxValue;
        var sign = 0; // bit 0: the symbol is −1
        while ((n2 | n3 | a2 | a3) != 0)
        {
            if ((a0 | a1 | a2 | a3) == 0)
            {
                return 0; // gcd(a, p) = n > 1: p is prime, so a was 0
            }

            // a >>= trailing zeros (a ≠ 0).
            var zeros = a0 != 0 ? BitOperations.TrailingZeroCount(a0)
                : a1 != 0 ? 64 + BitOperations.TrailingZeroCount(a1)
                : a2 != 0 ? 128 + BitOperations.TrailingZeroCount(a2)
                : 192 + BitOperations.TrailingZeroCount(a3);
            sign ^= zeros & (int)((n0 >> 1) ^ (n0 >> 2)); // (2 | n) = −1 exactly when n ≡ 3, 5 mod 8
            while (zeros >= 64)
            {
                (a0, a1, a2, a3) = (a1, a2, a3, 0);
                zeros -= 64;
            }

            if (zeros > 0)
            {
                a0 = (a0 >> zeros) | (a1 << (64 - zeros));
                a1 = (a1 >> zeros) | (a2 << (64 - zeros));
                a2 = (a2 >> zeros) | (a3 << (64 - zeros));
                a3 >>= zeros;
            }

            // Both odd now: keep the larger on top, then subtract (the difference is even).
            if (a3 < n3 || (a3 == n3 && (a2 < n2 || (a2 == n2 && (a1 < n1 || (a1 == n1 && a0 < n0))))))
            {
                (a0, a1, a2, a3, n0, n1, n2, n3) = (n0, n1, n2, n3, a0, a1, a2, a3);
                sign ^= (int)((a0 & n0) >> 1); // both 3 mod 4
            }

            var d0 = a0 - n0;
            var borrow = a0 < n0 ? 1UL : 0;
            var d1 = a1 - n1 - borrow;
            borrow = a1 < n1 || (a1 == n1 && borrow != 0) ? 1UL : 0;
            var d2 = a2 - n2 - borrow;
            borrow = a2 < n2 || (a2 == n2 && borrow != 0) ? 1UL : 0;
            (a0, a1, a2, a3) = (d0, d1, d2, a3 - n3 - borrow);
        }

        return Jacobi128(new UInt128(a1, a0), new UInt128(n1, n0), sign);
    }

    private static int Jacobi128(UInt128 a, UInt128 n, int sign)
    {
        while ((ulong)(n >> 64) != 0 || (ulong)(a >> 64) != 0)
        {
            if (a == UInt128.Zero)
            {
                return 0;
            }

            var zeros = (int)UInt128.TrailingZeroCount(a);
            sign ^= zeros & (int)(((ulong)n >> 1) ^ ((ulong)n >> 2));
            a >>= zeros;
            if (a < n)
            {
                (a, n) = (n, a);
                sign ^= (int)(((ulong)a & (ulong)n) >> 1);
            }

            a -= n;
        }

        return Jacobi64((ulong)a, (ulong)n, sign);
    }

    private static int Jacobi64(ulong a, ulong n, int sign)
    {
        while (a != 0)
        {
            var zeros = BitOperations.TrailingZeroCount(a);
            sign ^= zeros & (int)((n >> 1) ^ (n >> 2));
            a >>= zeros;
            if (a < n)
            {
                (a, n) = (n, a);
                sign ^= (int)((a & n) >> 1);
            }

            a -= n;
        }

        return n != 1 ? 0 : (sign & 1) == 0 ? 1 : -1;
    }
}
