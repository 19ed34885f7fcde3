using System.Globalization;
using Coinop.Core.Identity;
using Coinop.Core.Sealing;

namespace Coinop.Core.Workloads;

/// <summary>An access receipt as the market relays it: the copy it belongs to, the provider the market names, and the receipt opened with the consumer's key (null when it does not open).</summary>
public sealed record RelayedReceipt(long Epoch, string ProviderId, AccessReceipt? Opened);

/// <summary>What the consumer was charged: paid in, spent so far, at the workload's rate.</summary>
public sealed record ChargedMoney(long PaidMsat, long? SpentMsat, decimal RateMsatPerSecond);

/// <summary>The usage of one copy (epoch) as its provider signed it.</summary>
public sealed record CopyUsage(long Epoch, string ProviderId, int Records, long WindowStart, long WindowEnd, double CpuCoreSeconds, double MemoryMibSeconds, long NetBytes, double WallSeconds);

/// <summary>The outcome of an audit: each copy's usage, the totals, and every mismatch found (none means the evidence holds together).</summary>
public sealed record UsageAuditResult(IReadOnlyList<CopyUsage> Copies, IReadOnlyList<string> Mismatches, int ReceiptsChecked)
{
    public bool Ok => Mismatches.Count == 0;

    public double CpuCoreSeconds => Copies.Sum(c => c.CpuCoreSeconds);

    public double MemoryMibSeconds => Copies.Sum(c => c.MemoryMibSeconds);

    public long NetBytes => UsageAudit.SaturatingSum(Copies.Select(c => c.NetBytes));

    public double WallSeconds => Copies.Sum(c => c.WallSeconds);
}

/// <summary>
/// Checks a workload's usage evidence without trusting the market that relays it (docs/protocol.md, "Usage records"):
/// every record's Ed25519 signature over the signing domain and its exact payload, made by a provider whose id is the
/// hash of the signing key and who served the workload; one provider per copy; windows contiguous within each copy
/// (each starts where the previous ended); copies that do not overlap in time (beyond <see cref="ClockSkew"/> between
/// two providers' clocks); every access receipt opened with the consumer's key, naming this workload and its copy, and
/// signed by the provider the market names; and money never charged beyond what was paid. Pure: evidence in, findings out.
/// </summary>
public static class UsageAudit
{
    /// <summary>How far two providers' wall clocks may disagree before one copy's windows are taken to overlap another's.</summary>
    public static readonly TimeSpan ClockSkew = TimeSpan.FromSeconds(1);

    public static UsageAuditResult Check(string workloadId, IReadOnlyCollection<SignedUsageRecord> signed, IReadOnlySet<string> servedBy,
        IReadOnlyCollection<RelayedReceipt> receipts, ChargedMoney? money)
    {
        var mismatches = new List<string>();
        var records = new List<(UsageRecord Record, string Provider)>();
        var index = 0;
        foreach (var s in signed)
        {
            index++;
            var record = UsageRecord.Verify(s);
            if (record is null)
            {
                mismatches.Add($"usage record {index}: the signature does not verify (or the record is malformed)");
                continue;
            }

            var provider = ProviderIdOf(s.PublicKey);
            if (record.WorkloadId != workloadId)
            {
                mismatches.Add($"usage record {index}: signed for workload {record.WorkloadId}, not {workloadId}");
            }
            else if (provider is null || !servedBy.Contains(provider))
            {
                mismatches.Add($"usage record {index} (epoch {record.Epoch}): signed by {provider ?? "an invalid key"}, which never served this workload");
            }
            else
            {
                records.Add((record, provider));
            }
        }

        var copies = new List<CopyUsage>();
        foreach (var copy in records.GroupBy(r => r.Record.Epoch).OrderBy(g => g.Key))
        {
            var providers = copy.Select(r => r.Provider).Distinct().ToList();
            if (providers.Count > 1)
            {
                mismatches.Add($"epoch {copy.Key}: records signed by {providers.Count} providers ({string.Join(", ", providers)})");
            }

            var windows = copy.Select(r => r.Record).OrderBy(r => r.WindowStart).ThenBy(r => r.WindowEnd).ToList();
            for (var i = 1; i < windows.Count; i++)
            {
                if (windows[i].WindowStart != windows[i - 1].WindowEnd)
                {
                    mismatches.Add(windows[i].WindowStart < windows[i - 1].WindowEnd
                        ? $"epoch {copy.Key}: windows overlap ({Span(windows[i - 1])} and {Span(windows[i])})"
                        : $"epoch {copy.Key}: a gap between {Span(windows[i - 1])} and {Span(windows[i])}");
                }
            }

            copies.Add(new CopyUsage(copy.Key, providers[0], windows.Count, windows[0].WindowStart, windows[^1].WindowEnd,
                windows.Sum(w => w.CpuCoreSeconds), windows.Sum(w => w.MemoryMibSeconds), SaturatingSum(windows.Select(w => w.NetBytes)), windows.Sum(w => w.WallSeconds)));
        }

        var skew = (long)ClockSkew.TotalMilliseconds;
        for (var i = 0; i < copies.Count; i++)
        {
            for (var j = i + 1; j < copies.Count; j++)
            {
                var (a, b) = (copies[i], copies[j]);
                var overlap = Math.Min(a.WindowEnd, b.WindowEnd) - Math.Max(a.WindowStart, b.WindowStart);
                if (overlap > skew)
                {
                    mismatches.Add(string.Create(CultureInfo.InvariantCulture,
                        $"epochs {a.Epoch} and {b.Epoch} ran at the same time for {overlap / 1000.0:0.###} s"));
                }
            }
        }

        foreach (var receipt in receipts.OrderBy(r => r.Epoch))
        {
            if (receipt.Opened is not { } opened)
            {
                mismatches.Add($"access receipt of epoch {receipt.Epoch}: it does not open with the consumer's key");
            }
            else if (opened.WorkloadId != workloadId || opened.Epoch != receipt.Epoch)
            {
                mismatches.Add($"access receipt of epoch {receipt.Epoch}: it names workload {opened.WorkloadId} epoch {opened.Epoch}");
            }
            else if (opened.SignerId() is not { } signer)
            {
                mismatches.Add($"access receipt of epoch {receipt.Epoch}: not signed by its provider (or the signature does not verify)");
            }
            else if (signer != receipt.ProviderId)
            {
                mismatches.Add($"access receipt of epoch {receipt.Epoch}: signed by {signer}, but the market names {receipt.ProviderId}");
            }
            else if (copies.FirstOrDefault(c => c.Epoch == receipt.Epoch) is { } copy && copy.ProviderId != signer)
            {
                mismatches.Add($"access receipt of epoch {receipt.Epoch}: signed by {signer}, but that copy's usage by {copy.ProviderId}");
            }
        }

        if (money is { SpentMsat: { } spent } && spent > money.PaidMsat)
        {
            mismatches.Add($"charged {spent} msat, more than the {money.PaidMsat} msat paid");
        }

        return new UsageAuditResult(copies, mismatches, receipts.Count);
    }

    private static string? ProviderIdOf(string publicKeyBase64)
    {
        Span<byte> key = stackalloc byte[35];
        return Convert.TryFromBase64String(publicKeyBase64, key, out var written) && written == 32 ? ProviderAuth.ProviderIdFor(key[..32]) : null;
    }

    /// <summary>A sum that stops at the largest long: a signer's byte counts are its own words, and two of long.MaxValue must not throw.</summary>
    public static long SaturatingSum(IEnumerable<long> values)
    {
        var sum = 0L;
        foreach (var v in values)
        {
            sum = v > 0 && sum > long.MaxValue - v ? long.MaxValue : v < 0 && sum < long.MinValue - v ? long.MinValue : sum + v;
        }

        return sum;
    }

    private static string Span(UsageRecord r) => $"{r.WindowStart}–{r.WindowEnd}";
}
