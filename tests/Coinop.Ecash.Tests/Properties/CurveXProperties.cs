using System.Numerics;
using Coinop.Ecash.Crypto;
using CsCheck;
using NBitcoin.Secp256k1;

namespace Coinop.Ecash.Tests.Properties;

/// <summary>
/// hash_to_curve skips a candidate x without a square root when x³ + 7 is not a square mod p (<see cref="CurveX"/>):
/// the rule must say exactly what parsing says, or hash_to_curve would pick another point than every other wallet.
/// </summary>
public class CurveXProperties
{
    private static readonly BigInteger P = BigInteger.Parse("0fffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2f", System.Globalization.NumberStyles.HexNumber);

    /// <summary>Random values below p and the edges (0, 1, 2, p − 1, p − 2, powers of two, small numbers, values near 2^64 and 2^128).</summary>
    private static readonly Gen<BigInteger> BelowP = Gen.OneOf(
        Gen.Byte.Array[32].Select(b => new BigInteger(b, isUnsigned: true, isBigEndian: true) % P),
        Gen.Int[0, 255].Select(bit => BigInteger.One << bit),
        Gen.ULong.Select(small => new BigInteger(small)),
        Gen.Select(Gen.Int[0, 3], Gen.Int[-3, 3]).Select((k, d) => BigInteger.Abs((BigInteger.One << (64 * k)) + d) % P),
        Gen.UInt[1, 1000].Select(small => P - small),
        Gen.Const(BigInteger.Zero));

    [Fact]
    public void The_Jacobi_symbol_modulo_p_is_Eulers_criterion()
    {
        BelowP.Sample(a =>
        {
            var euler = BigInteger.ModPow(a, (P - 1) / 2, P);
            var expected = a.IsZero ? 0 : euler.IsOne ? 1 : -1;
            Assert.True(a.IsZero || euler.IsOne || euler == P - 1);
            var bytes = a.ToByteArray(isUnsigned: true); // little-endian
            Array.Resize(ref bytes, 32);
            var limbs = Enumerable.Range(0, 4).Select(i => BitConverter.ToUInt64(bytes, 8 * i)).ToArray();
            Assert.Equal(expected, CurveX.Jacobi(limbs[0], limbs[1], limbs[2], limbs[3]));
        }, iter: 2000);
    }

    /// <summary>MayHavePoint(x) is true exactly when NBitcoin.Secp256k1 (an independent implementation) finds a point with that x.</summary>
    [Fact]
    public void A_candidate_is_skipped_exactly_when_no_point_has_its_x()
    {
        var edges = Gen.OneOf(BelowP, Gen.UInt[0, 2000].Select(d => P + d), Gen.Int[0, 2000].Select(d => (BigInteger.One << 256) - 1 - d));
        edges.Sample(value =>
        {
            var x = new byte[32];
            var bytes = value.GetByteCount(isUnsigned: true);
            Array.Copy(value.ToByteArray(isUnsigned: true, isBigEndian: true), 0, x, 32 - bytes, bytes);
            var parses = FE.TryCreate(x, out var fe) && GE.TryCreateXOVariable(fe, odd: false, out _);
            Assert.Equal(parses, CurveX.MayHavePoint(x));
            Assert.Equal(parses, Coinop.Ecash.Crypto.Secp256k1.TryParsePoint([2, .. x], out _)); // and libsecp256k1 agrees
        }, iter: 2000);
    }
}
