using Coinop.Core.Workloads;

namespace Coinop.Market.Workloads;

/// <summary>How far placement trusts a provider's capacity claim before it has delivered anything, and how fast that grows.</summary>
/// <param name="UnprovenCpuCores">What a provider with no delivered work is believed to offer at most (<c>--unproven-provider-cpu</c>).</param>
/// <param name="UnprovenMemoryMb">The same for memory (<c>--unproven-provider-memory</c>).</param>
/// <param name="ProvingTime">How long a copy must have been live on a provider before its size counts as delivered.</param>
/// <param name="Growth">How many times what it delivered a provider is believed to offer.</param>
public sealed record DeliveryTrustSettings(double UnprovenCpuCores, long UnprovenMemoryMb, TimeSpan ProvingTime, double Growth = 2)
{
    public static readonly TimeSpan DefaultProvingTime = TimeSpan.FromMinutes(1);
}

/// <summary>
/// Bounds what placement believes a provider offers by what the market itself saw it deliver (issue 9, item 8). The
/// measure is taken from the market's own records, never from the provider's words: the copies the market placed on
/// it (their sizes are the consumers' specs) that have been live, heartbeating on the market's clock, for the proving
/// time. The largest total it ever held that way is its delivered capacity; placement believes at most
/// <see cref="DeliveryTrustSettings.Growth"/> times that, and at least the small unproven allowance. A capacity claim
/// is not an input here at all, so claiming more buys nothing; trust grows only by running the copies the market
/// gave, at most by the growth factor per proving time. Pure: the supervisor feeds it the open workloads and the time.
/// </summary>
public sealed class DeliveryTrust(DeliveryTrustSettings settings)
{
    private readonly Dictionary<string, (double CpuCores, long MemoryMb)> _delivered = new(StringComparer.Ordinal);

    public DeliveryTrustSettings Settings => settings;

    /// <summary>Takes note of what each provider delivers now: its primaries live for at least the proving time.</summary>
    public void Observe(IEnumerable<Workload> open, DateTimeOffset now)
    {
        var held = new Dictionary<string, (double CpuCores, long MemoryMb)>(StringComparer.Ordinal);
        foreach (var w in open)
        {
            if (w is { IsTerminal: false, State: WorkloadState.Live, Provider: { } provider } && now - w.Since >= settings.ProvingTime)
            {
                var (cpu, memory) = held.GetValueOrDefault(provider);
                held[provider] = (cpu + w.Spec.CpuCores, memory + w.Spec.MemoryMb);
            }
        }

        foreach (var (provider, (cpu, memory)) in held)
        {
            var (bestCpu, bestMemory) = _delivered.GetValueOrDefault(provider);
            _delivered[provider] = (Math.Max(bestCpu, cpu), Math.Max(bestMemory, memory));
        }
    }

    /// <summary>The most placement believes <paramref name="providerId"/> offers, whatever it claims.</summary>
    public (double CpuCores, long MemoryMb) Bound(string providerId)
    {
        var (cpu, memory) = _delivered.GetValueOrDefault(providerId);
        return (Math.Max(settings.UnprovenCpuCores, settings.Growth * cpu),
            Math.Max(settings.UnprovenMemoryMb, (long)Math.Min(long.MaxValue / 2, settings.Growth * memory)));
    }

    /// <summary>What <paramref name="providerId"/> delivered so far (zero for a provider with no history).</summary>
    public (double CpuCores, long MemoryMb) Delivered(string providerId) => _delivered.GetValueOrDefault(providerId);

    /// <summary>A candidate whose believed capacity is its claim cut to this bound.</summary>
    public PlacementCandidate Limit(PlacementCandidate candidate)
    {
        var (cpu, memory) = Bound(candidate.ProviderId);
        return candidate with { CpuCores = Math.Min(candidate.CpuCores, cpu), MemoryMb = Math.Min(candidate.MemoryMb, memory) };
    }
}
