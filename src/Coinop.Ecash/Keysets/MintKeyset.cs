using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Numerics;
using System.Security.Cryptography;
using System.Text;
using Coinop.Ecash.Crypto;
using Scalar = NBitcoin.Secp256k1.Scalar;

namespace Coinop.Ecash.Keysets;

/// <summary>One amount's key pair of a mint keyset.</summary>
public sealed class MintKey
{
    public MintKey(ulong amount, Scalar privateKey)
    {
        Amount = amount;
        PrivateKey = privateKey;
        PublicKey = Secp256k1.MultiplyG(privateKey);
    }

    public ulong Amount { get; }

    public Scalar PrivateKey { get; }

    public CurvePoint PublicKey { get; }

    public string PublicKeyHex => Secp256k1.CompressedHex(PublicKey);
}

/// <summary>
/// A proof the mint made for itself, with the blinded message and the blind signature (and its DLEQ proof) that a
/// wallet's request for it would have left.
/// </summary>
public sealed record SelfIssuedProof(Proof Proof, BlindedMessage Message, BlindSignature Signature, CurvePoint Blinded);

/// <summary>
/// A keyset with its private keys, as only the mint holds it: signs outputs (with a NUT-12 DLEQ proof) and
/// verifies proofs. Keys are derived from the mint's master seed and the keyset's derivation index, so the
/// store keeps one seed rather than 64 private keys per keyset.
/// </summary>
public sealed class MintKeyset
{
    private readonly MintKey?[] _byBit = new MintKey?[64];

    private MintKeyset(string unit, ulong inputFeePpk, long? finalExpiry, IEnumerable<MintKey> keys)
    {
        Unit = unit;
        InputFeePpk = inputFeePpk;
        FinalExpiry = finalExpiry;
        foreach (var k in keys)
        {
            _byBit[BitOperations.Log2(k.Amount)] = k;
        }

        var hex = Keys.ToDictionary(k => k.Amount, k => k.PublicKeyHex);
        Id = KeysetId.DeriveV2(hex, unit, inputFeePpk, finalExpiry);
        PublicKeysHex = hex.OrderBy(k => k.Key).ToDictionary(k => k.Key.ToString(CultureInfo.InvariantCulture), k => k.Value);
    }

    public string Id { get; }

    public string Unit { get; }

    public ulong InputFeePpk { get; }

    public long? FinalExpiry { get; }

    public IEnumerable<MintKey> Keys => _byBit.Where(k => k is not null)!;

    /// <summary>The <c>keys</c> object of a NUT-01 response: amount (as text) to compressed key.</summary>
    public IReadOnlyDictionary<string, string> PublicKeysHex { get; }

    /// <summary>Derives the keys for amounts 2^0..2^(maxOrder-1): <c>k = HMAC-SHA256(seed, "coinop/mint/v1/{index}/{unit}/{amount}") mod n</c>.</summary>
    public static MintKeyset Derive(ReadOnlySpan<byte> seed, long index, string unit, ulong inputFeePpk, int maxOrder = 64)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxOrder, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maxOrder, 64);
        var keys = new List<MintKey>(maxOrder);
        for (var bit = 0; bit < maxOrder; bit++)
        {
            var amount = 1UL << bit;
            var label = Encoding.UTF8.GetBytes($"coinop/mint/v1/{index}/{unit}/{amount}");
            var k = Secp256k1.ScalarFromHash(HMACSHA256.HashData(seed, label));
            keys.Add(new MintKey(amount, k.IsZero ? Scalar.One : k));
        }

        return new MintKeyset(unit, inputFeePpk, null, keys);
    }

    public bool TryGetKey(ulong amount, [NotNullWhen(true)] out MintKey? key)
    {
        key = Amounts.IsPowerOfTwo(amount) ? _byBit[BitOperations.Log2(amount)] : null;
        return key is not null;
    }

    /// <summary>Signs a blinded message and attaches the DLEQ proof. The amount must be one of the keyset's.</summary>
    public BlindSignature Sign(ulong amount, CurvePoint blinded)
    {
        if (!TryGetKey(amount, out var key))
        {
            throw new ArgumentOutOfRangeException(nameof(amount), amount, "the keyset has no key for this amount");
        }

        var c = Bdhke.Sign(key.PrivateKey, blinded);
        var dleq = Dleq.Create(key.PrivateKey, key.PublicKey, blinded, c);
        return new BlindSignature
        {
            Amount = amount,
            Id = Id,
            C = Secp256k1.CompressedHex(c),
            Dleq = new DleqProof { E = Secp256k1.ScalarHex(dleq.E), S = Secp256k1.ScalarHex(dleq.S) },
        };
    }

    /// <summary>
    /// Makes a proof of <paramref name="amount"/> for the mint itself (change it hands out). A wallet would blind,
    /// ask for a signature and unblind; the mint knows the secret and <c>k</c>, so it makes <c>C = kY</c> directly and
    /// derives the rest from the same secret and a random <c>r</c>: <c>B_ = Y + rG</c>, <c>C_ = kB_</c> and
    /// <c>C = C_ - rK</c>, with the DLEQ proof on <c>(B_, C_)</c> and <c>r</c> handed to the receiver, who checks it
    /// exactly as NUT-12 says. Less work than the wallet round trip: no point decompressions, no DLEQ check.
    /// </summary>
    public SelfIssuedProof IssueToSelf(ulong amount)
    {
        if (!TryGetKey(amount, out var key))
        {
            throw new ArgumentOutOfRangeException(nameof(amount), amount, "the keyset has no key for this amount");
        }

        var secret = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
        var r = Secp256k1.RandomScalar();
        var y = Bdhke.HashToCurve(secret);
        var blinded = Bdhke.Blind(y, r);
        // C = kY and C_ = kB_ = kY + rkG = C + (rk)G: one constant-time multiplication by an arbitrary point and one
        // by the generator (libsecp256k1's precomputed tables make that about 2.5 times cheaper), instead of two.
        var c = Bdhke.Sign(key.PrivateKey, y);
        var blindSignature = Secp256k1.Add(c, Secp256k1.MultiplyG(r * key.PrivateKey))
            ?? throw new CryptographicException("C_ is infinity"); // only if B_ were: Blind has already refused that
        var dleq = Dleq.Create(key.PrivateKey, key.PublicKey, blinded, blindSignature);
        var (e, s) = (Secp256k1.ScalarHex(dleq.E), Secp256k1.ScalarHex(dleq.S));
        return new SelfIssuedProof(
            new Proof { Amount = amount, Id = Id, Secret = secret, C = Secp256k1.CompressedHex(c), Dleq = new DleqProof { E = e, S = s, R = Secp256k1.ScalarHex(r) } },
            new BlindedMessage { Amount = amount, Id = Id, B = Secp256k1.CompressedHex(blinded) },
            new BlindSignature { Amount = amount, Id = Id, C = Secp256k1.CompressedHex(blindSignature), Dleq = new DleqProof { E = e, S = s } },
            blinded);
    }

    /// <summary>Verifies a proof's signature: <c>C == k_amount · hash_to_curve(secret)</c>.</summary>
    public bool Verify(Proof proof) => Verify(proof, Bdhke.HashToCurve(proof.Secret));

    /// <summary>As <see cref="Verify(Proof)"/> with <c>Y</c> already computed (the mint needs Y for the spent set anyway).</summary>
    public bool Verify(Proof proof, CurvePoint y)
    {
        Span<byte> c = stackalloc byte[33];
        return TryGetKey(proof.Amount, out var key)
            && proof.C is { Length: 66 }
            && Convert.FromHexString(proof.C, c, out _, out var written) == System.Buffers.OperationStatus.Done && written == 33
            && Bdhke.Verify(key.PrivateKey, y, c);
    }
}
