using System.Buffers.Binary;
using SHA256 = System.Security.Cryptography.SHA256;
using System.Text;
using Coinop.Ecash;
using NBitcoin.Secp256k1;
using Org.BouncyCastle.Crypto.EC;
using BcBigInteger = Org.BouncyCastle.Math.BigInteger;

namespace Coinop.Bench;

/// <summary>
/// The same proof verification (hash_to_curve, k·Y, compare with C) in three secp256k1 implementations, for the
/// side-by-side figures in docs/benchmarks.md: BouncyCastle's custom curve (what the mint used before), NBitcoin.Secp256k1
/// (a managed C# port of libsecp256k1) and libsecp256k1 itself through Secp256k1.Net (what Coinop.Ecash uses now).
/// </summary>
public sealed class CurveComparison
{
    private static readonly byte[] Domain = "Secp256k1_HashToCurve_Cashu_"u8.ToArray();
    private static readonly Org.BouncyCastle.Asn1.X9.X9ECParameters Bc = CustomNamedCurves.GetByName("secp256k1");
    private readonly (Proof Proof, byte[] C, BcBigInteger BcKey, Scalar Key)[] _cases;
    private int _next;

    public CurveComparison(Ecash.Keysets.MintKeyset keyset, IReadOnlyList<Proof> proofs)
    {
        _cases = [.. proofs.Select(p =>
        {
            Assert(keyset.TryGetKey(p.Amount, out var key));
            return (p, Convert.FromHexString(p.C), new BcBigInteger(1, key!.PrivateKey.ToBytes()), key.PrivateKey);
        })];
        foreach (var _ in _cases)
        {
            Assert(BouncyCastleVerify() && ManagedVerify()); // both agree with the mint on every proof
        }
    }

    /// <summary>BouncyCastle: y² = x³ + 7 solved with its field's square root, then its GLV multiplication.</summary>
    public bool BouncyCastleVerify()
    {
        var (proof, c, k, _) = _cases[_next++ % _cases.Length];
        var y = BcHashToCurve(proof.Secret);
        return y.Multiply(k).Normalize().GetEncoded(true).AsSpan().SequenceEqual(c);
    }

    /// <summary>NBitcoin.Secp256k1: FE.Sqrt for hash_to_curve, then ECMultContext's Strauss/GLV multiplication.</summary>
    public bool ManagedVerify()
    {
        var (proof, c, _, k) = _cases[_next++ % _cases.Length];
        var y = ManagedHashToCurve(proof.Secret);
        var product = ECMultContext.Instance.Mult(y.ToGroupElementJacobian(), k, null).ToGroupElement();
        var x = product.x.NormalizeVariable();
        Span<byte> encoded = stackalloc byte[33];
        encoded[0] = product.y.NormalizeVariable().IsOdd ? (byte)3 : (byte)2;
        x.WriteToSpan(encoded[1..]);
        return encoded.SequenceEqual(c);
    }

    private static Org.BouncyCastle.Math.EC.ECPoint BcHashToCurve(string secret)
    {
        Span<byte> input = stackalloc byte[36];
        SHA256.HashData([.. Domain, .. Encoding.UTF8.GetBytes(secret)], input[..32]);
        Span<byte> hash = stackalloc byte[32];
        var p = Bc.Curve.Field.Characteristic;
        for (uint counter = 0; ; counter++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(input[32..], counter);
            SHA256.HashData(input, hash);
            var x = new BcBigInteger(1, hash.ToArray());
            if (x.CompareTo(p) >= 0)
            {
                continue;
            }

            var fx = Bc.Curve.FromBigInteger(x);
            var y = fx.Square().Multiply(fx).Add(Bc.Curve.B).Sqrt();
            if (y is not null)
            {
                return Bc.Curve.CreatePoint(x, (y.TestBitZero() ? y.Negate() : y).ToBigInteger());
            }
        }
    }

    private static GE ManagedHashToCurve(string secret)
    {
        Span<byte> input = stackalloc byte[36];
        SHA256.HashData([.. Domain, .. Encoding.UTF8.GetBytes(secret)], input[..32]);
        Span<byte> hash = stackalloc byte[32];
        for (uint counter = 0; ; counter++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(input[32..], counter);
            SHA256.HashData(input, hash);
            if (FE.TryCreate(hash, out var x) && GE.TryCreateXOVariable(x, odd: false, out var y))
            {
                return y;
            }
        }
    }

    private static void Assert(bool condition)
    {
        if (!condition)
        {
            throw new InvalidOperationException("implementations disagree");
        }
    }
}
