using BenchmarkDotNet.Attributes;
using Coinop.Ecash;
using Coinop.Ecash.Crypto;
using Coinop.Ecash.Keysets;
using Coinop.Ecash.Wallet;

namespace Coinop.Bench;

/// <summary>
/// What the mint pays per proof it accepts: <c>hash_to_curve(secret)</c>, one scalar multiplication by the amount's
/// private key, and a comparison with <c>C</c>. Single-threaded, so ops/s is the per-core rate (target ≥ 25,000/s).
/// </summary>
[MemoryDiagnoser]
public class ProofVerificationBenchmarks
{
    private MintKeyset _keyset = null!;
    private KeysetKeys _keys = null!;
    private Proof[] _proofs = [];
    private int _next;

    /// <summary>The same verification in BouncyCastle and NBitcoin.Secp256k1 (managed), for side-by-side figures.</summary>
    public CurveComparison Comparison { get; private set; } = null!;

    /// <summary>The same libsecp256k1 verification as the mint did it before its allocation-free path.</summary>
    public VerificationBefore Before { get; private set; } = null!;

    [GlobalSetup]
    public void Setup()
    {
        _keyset = MintKeyset.Derive(new byte[32], 0, "sat", 0);
        var keys = _keys = KeysetKeys.Parse(_keyset.PublicKeysHex);
        var outputs = BlindedOutputs.Create(_keyset.Id, Enumerable.Range(0, 256).Select(i => 1UL << (i % 64)));
        var signatures = outputs.Select(o => _keyset.Sign(o.Amount, Secp256k1.ParsePoint(o.Message.B))).ToList();
        _proofs = [.. BlindedOutputs.Unblind(outputs, signatures, _ => keys)];
        Comparison = new CurveComparison(_keyset, _proofs);
        Before = new VerificationBefore(_keyset);
    }

    [Benchmark(Description = "verify one proof (hash_to_curve + k·Y == C)")]
    public bool VerifyProof()
    {
        var proof = _proofs[_next++ & 255];
        return _keyset.Verify(proof);
    }

    [Benchmark(Description = "verify one proof, as before the allocation-free path")]
    public bool VerifyProofBefore() => Before.Verify(_proofs[_next++ & 255]);

    [Benchmark(Description = "hash_to_curve alone")]
    public object HashToCurve() => Bdhke.HashToCurve(_proofs[_next++ & 255].Secret);

    [Benchmark(Description = "hash_to_curve as before (SHA256.HashData for every hash)")]
    public object HashToCurveBefore() => VerificationBefore.HashToCurve(_proofs[_next++ & 255].Secret);

    [Benchmark(Description = "make a proof of change for the mint itself (with DLEQ)")]
    public SelfIssuedProof IssueToSelf() => _keyset.IssueToSelf(1UL << (_next++ & 7));

    [Benchmark(Description = "the same as a wallet round trip: blind, sign with DLEQ, unblind")]
    public Proof IssueByRoundTrip()
    {
        var outputs = BlindedOutputs.Create(_keyset.Id, [1UL << (_next++ & 7)]);
        var signature = _keyset.Sign(outputs[0].Amount, Secp256k1.ParsePoint(outputs[0].Message.B));
        return BlindedOutputs.Unblind(outputs, [signature], _ => _keys, verifyDleq: false)[0];
    }

    [Benchmark(Description = "make a proof of change for the mint itself, as before (two variable-time k·P)")]
    public string IssueToSelfBefore() => Before.IssueToSelfBefore(1UL << (_next++ & 7));

    [Benchmark(Description = "sign one output with DLEQ, as before (k·B_ in variable time)")]
    public string SignWithDleqBefore()
    {
        var proof = _proofs[_next++ & 255];
        return Before.SignBefore(proof.Amount, Bdhke.HashToCurve(proof.Secret));
    }

    [Benchmark(Description = "sign one output with DLEQ (mint side of a swap)")]
    public BlindSignature SignWithDleq()
    {
        var proof = _proofs[_next++ & 255];
        return _keyset.Sign(proof.Amount, Bdhke.HashToCurve(proof.Secret));
    }
}
