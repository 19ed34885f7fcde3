using Coinop.Core.Identity;
using Coinop.Core.Sealing;
using Coinop.Core.Workloads;
using CsCheck;
using NSec.Cryptography;

namespace Coinop.Core.Tests.Workloads;

/// <summary>
/// <see cref="UsageAudit"/> on evidence built the way providers build it: random honest histories (several copies on
/// distinct providers, contiguous windows, signed receipts) pass; any one tampering — a changed byte, another key, a
/// moved, dropped or duplicated window, a copy overlapping another, a forged, foreign or unsigned receipt, an overcharge —
/// is a mismatch.
/// </summary>
public class UsageAuditTests
{
    private const string Id = "wl-audit";

    private static readonly Key[] Providers = [.. Enumerable.Range(0, 4).Select(_ => Key.Create(SignatureAlgorithm.Ed25519))];

    private static readonly Key Consumer = Key.Create(KeyAgreementAlgorithm.X25519, new KeyCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport });

    private static string ProviderId(int i) => ProviderAuth.ProviderIdFor(Providers[i].PublicKey.Export(KeyBlobFormat.RawPublicKey));

    /// <summary>A workload's evidence: copies 1..n, each on provider (epoch − 1) % 4, windows back to back, a receipt per copy.</summary>
    private sealed record Evidence(List<SignedUsageRecord> Records, List<RelayedReceipt> Receipts, HashSet<string> ServedBy)
    {
        public ChargedMoney Money { get; set; } = new(100_000, 50_000, 10);
    }

    private static readonly Gen<Evidence> Honest = Gen.Select(Gen.Int[1, 4], Gen.Int[1, 5], Gen.Int[10, 20_000], Gen.Int[0, 3_000]).Select((copies, windows, windowMs, gapMs) =>
    {
        var records = new List<SignedUsageRecord>();
        var receipts = new List<RelayedReceipt>();
        var served = new HashSet<string>(StringComparer.Ordinal);
        long t = 1_800_000_000_000;
        for (var epoch = 1; epoch <= copies; epoch++)
        {
            var p = (epoch - 1) % Providers.Length;
            served.Add(ProviderId(p));
            for (var w = 0; w < windows; w++)
            {
                var end = t + windowMs - (w == windows - 1 ? windowMs / 2 : 0); // the last window is shorter
                records.Add(new UsageRecord(Id, epoch, t, end, 0.1 * w, 64, 0, (end - t) / 1000.0).Sign(Providers[p]));
                t = end;
            }

            var receipt = new AccessReceipt(Id, epoch, "127.0.0.1", 40_000 + epoch, "cred", t).SignedWith(Providers[p]);
            receipts.Add(new RelayedReceipt(epoch, ProviderId(p), receipt));
            t += gapMs; // the next copy starts after this one stopped
        }

        return new Evidence(records, receipts, served);
    });

    private static UsageAuditResult Audit(Evidence e) => UsageAudit.Check(Id, e.Records, e.ServedBy, e.Receipts, e.Money);

    [Fact]
    public void Honest_evidence_verifies()
    {
        Honest.Sample(e =>
        {
            var result = Audit(e);
            Assert.True(result.Ok, string.Join("; ", result.Mismatches));
            Assert.Equal(e.Records.Count, result.Copies.Sum(c => c.Records));
        }, iter: 300);
    }

    private enum Tamper
    {
        FlipPayloadByte,
        FlipSignatureByte,
        OtherProvidersKey,
        DropMiddleWindow,
        ShiftWindow,
        DuplicateWindowElsewhere,
        OverlapCopies,
        ForeignWorkload,
        UnsignedReceipt,
        ReceiptSignedByAnother,
        ReceiptForAnotherEpoch,
        ReceiptDoesNotOpen,
        Overcharge,
    }

    [Fact]
    public void Any_one_tampering_is_a_mismatch()
    {
        Gen.Select(Honest, Gen.Enum<Tamper>(), Gen.Int[0, 1000]).Sample((e, tamper, pick) =>
        {
            if (!Apply(e, tamper, pick))
            {
                return; // the evidence has nothing this tampering could touch (e.g. one window, one copy)
            }

            var result = Audit(e);
            Assert.False(result.Ok, $"{tamper} went unnoticed");
        }, iter: 2000);
    }

    [Fact]
    public void A_copy_overlapping_another_within_clock_skew_is_not_a_mismatch_but_beyond_it_is()
    {
        UsageAuditResult Run(long overlapMs)
        {
            var a = new UsageRecord(Id, 1, 0, 10_000, 1, 1, 0, 10).Sign(Providers[0]);
            var b = new UsageRecord(Id, 2, 10_000 - overlapMs, 20_000, 1, 1, 0, 10).Sign(Providers[1]);
            return UsageAudit.Check(Id, [a, b], new HashSet<string> { ProviderId(0), ProviderId(1) }, [], null);
        }

        Assert.True(Run(0).Ok);
        Assert.True(Run((long)UsageAudit.ClockSkew.TotalMilliseconds).Ok);
        Assert.Contains("at the same time", Assert.Single(Run(5_000).Mismatches), StringComparison.Ordinal);
    }

    /// <summary>
    /// A provider that served the workload signs what it likes: windows at any long, byte counts that overflow any sum.
    /// The audit (run by <c>coinop workload verify</c> on what the market relays) used to throw on them — an overflow
    /// summing the bytes, a date out of range printing the windows — instead of reporting them; windows outside real
    /// time do not verify (the market refuses them too), and totals stop at the largest long.
    /// </summary>
    [Fact]
    public void Records_a_served_provider_signed_with_extreme_figures_are_findings_not_exceptions()
    {
        var edge = Gen.OneOf(Gen.Const(long.MinValue), Gen.Const(long.MaxValue), Gen.Const(-1L), Gen.Const(0L), Gen.Const(UsageRecord.MaxUnixMs),
            Gen.Const(UsageRecord.MaxUnixMs + 1), Gen.Long);
        var record = Gen.Select(Gen.Int[1, 2], edge, edge, edge).Select((epoch, start, end, bytes) => (epoch, start, end, bytes));
        record.Array[1, 6].Sample(records =>
        {
            var signed = records.Select(r => new UsageRecord(Id, r.epoch, r.start, r.end, 1e308, -1, r.bytes, double.MaxValue).Sign(Providers[r.epoch - 1])).ToList();
            var result = UsageAudit.Check(Id, signed, new HashSet<string> { ProviderId(0), ProviderId(1) }, [], null);

            _ = (result.NetBytes, result.CpuCoreSeconds, result.WallSeconds);
            foreach (var copy in result.Copies)
            {
                Assert.InRange(copy.WindowStart, 0, UsageRecord.MaxUnixMs);
                Assert.InRange(copy.WindowEnd, copy.WindowStart, UsageRecord.MaxUnixMs);
                _ = (DateTimeOffset.FromUnixTimeMilliseconds(copy.WindowStart), DateTimeOffset.FromUnixTimeMilliseconds(copy.WindowEnd));
            }

            var outside = records.Count(r => r.start < 0 || r.end < r.start || r.end > UsageRecord.MaxUnixMs);
            Assert.True(result.Mismatches.Count(m => m.Contains("does not verify", StringComparison.Ordinal)) == outside, string.Join("; ", result.Mismatches));
        }, iter: 500);

        var twoHuge = Enumerable.Range(0, 2).Select(i => new UsageRecord(Id, 1, i * 10L, (i + 1) * 10L, 0, 0, long.MaxValue, 0).Sign(Providers[0])).ToList();
        Assert.Equal(long.MaxValue, UsageAudit.Check(Id, twoHuge, new HashSet<string> { ProviderId(0) }, [], null).NetBytes);
    }

    private static bool Apply(Evidence e, Tamper tamper, int pick)
    {
        var i = pick % e.Records.Count;
        var r = UsageRecord.Verify(e.Records[i])!;
        var signer = Providers[(int)((r.Epoch - 1) % Providers.Length)];
        switch (tamper)
        {
            case Tamper.FlipPayloadByte:
                e.Records[i] = e.Records[i] with { Payload = Flip(e.Records[i].Payload, pick) };
                return true;
            case Tamper.FlipSignatureByte:
                e.Records[i] = e.Records[i] with { Signature = Flip(e.Records[i].Signature, pick) };
                return true;
            case Tamper.OtherProvidersKey:
                // Validly signed, but by a key whose provider never served the workload.
                using (var stranger = Key.Create(SignatureAlgorithm.Ed25519))
                {
                    e.Records[i] = r.Sign(stranger);
                }

                return true;
            case Tamper.DropMiddleWindow:
                var sameCopy = e.Records.Select(UsageRecord.Verify).Select((x, k) => (x!, k)).Where(x => x.Item1.Epoch == r.Epoch).ToList();
                if (sameCopy.Count < 3)
                {
                    return false;
                }

                e.Records.RemoveAt(sameCopy[1].k);
                return true;
            case Tamper.ShiftWindow:
                e.Records[i] = (r with { WindowStart = r.WindowStart + 1, WindowEnd = r.WindowEnd + 1 }).Sign(signer);
                return e.Records.Select(UsageRecord.Verify).Count(x => x!.Epoch == r.Epoch) > 1;
            case Tamper.DuplicateWindowElsewhere:
                // The same window signed again for the copy's epoch, as if the provider billed it twice.
                e.Records.Add((r with { WindowStart = r.WindowStart + 1 }).Sign(signer));
                return true;
            case Tamper.OverlapCopies:
                var last = e.Records.Select(UsageRecord.Verify).Max(x => x!.Epoch);
                if (last < 2)
                {
                    return false;
                }

                var earlier = e.Records.Select(UsageRecord.Verify).Where(x => x!.Epoch == 1).ToList();
                if (earlier[^1]!.WindowEnd - earlier[0]!.WindowStart <= UsageAudit.ClockSkew.TotalMilliseconds)
                {
                    return false; // a copy shorter than the clock skew cannot be caught overlapping
                }

                var p2 = Providers[1 % Providers.Length];
                // Epoch 2 claims a window over epoch 1's time.
                var from = earlier[0]!.WindowStart;
                e.Records.RemoveAll(s => UsageRecord.Verify(s)!.Epoch == 2);
                e.Records.Add(new UsageRecord(Id, 2, from, from + 60_000, 1, 1, 0, 60).Sign(p2));
                return true;
            case Tamper.ForeignWorkload:
                e.Records[i] = (r with { WorkloadId = "another" }).Sign(signer);
                return true;
            case Tamper.UnsignedReceipt:
                var k = pick % e.Receipts.Count;
                e.Receipts[k] = e.Receipts[k] with { Opened = e.Receipts[k].Opened! with { Signature = null, ProviderKey = null } };
                return true;
            case Tamper.ReceiptSignedByAnother:
                k = pick % e.Receipts.Count;
                var other = Providers[(int)(e.Receipts[k].Epoch % Providers.Length)];
                e.Receipts[k] = e.Receipts[k] with { Opened = (e.Receipts[k].Opened! with { Signature = null, ProviderKey = null }).SignedWith(other) };
                return true;
            case Tamper.ReceiptForAnotherEpoch:
                k = pick % e.Receipts.Count;
                var signedBy = Providers[(int)((e.Receipts[k].Epoch - 1) % Providers.Length)];
                e.Receipts[k] = e.Receipts[k] with { Opened = (e.Receipts[k].Opened! with { Epoch = e.Receipts[k].Epoch + 7, Signature = null }).SignedWith(signedBy) };
                return true;
            case Tamper.ReceiptDoesNotOpen:
                k = pick % e.Receipts.Count;
                e.Receipts[k] = e.Receipts[k] with { Opened = null };
                return true;
            case Tamper.Overcharge:
                e.Money = e.Money with { SpentMsat = e.Money.PaidMsat + 1 };
                return true;
            default:
                return false;
        }
    }

    private static string Flip(string base64, int pick)
    {
        var bytes = Convert.FromBase64String(base64);
        bytes[pick % bytes.Length] ^= (byte)(1 << (pick % 8));
        return Convert.ToBase64String(bytes);
    }

    [Fact]
    public void A_sealed_receipt_opens_only_for_its_consumer_and_keeps_its_signature()
    {
        var receipt = new AccessReceipt(Id, 3, "h", 1, "c", 2).SignedWith(Providers[2]);
        var sealedReceipt = receipt.Seal(Consumer.PublicKey.Export(KeyBlobFormat.RawPublicKey));
        var opened = AccessReceipt.Open(Consumer, sealedReceipt);
        Assert.Equal(receipt, opened);
        Assert.Equal(ProviderId(2), opened!.SignerId());
        using var stranger = Key.Create(KeyAgreementAlgorithm.X25519);
        Assert.Null(AccessReceipt.Open(stranger, sealedReceipt));
    }
}
