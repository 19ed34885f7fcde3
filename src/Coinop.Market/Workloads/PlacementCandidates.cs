using Coinop.Core.Pricing;
using Coinop.Core.Workloads;
using Coinop.Market.Gateway;

namespace Coinop.Market.Workloads;

/// <summary>
/// Which connected providers could take a copy or a standby now, what placement believes each offers, and what the open
/// workloads already hold on each. A provider's workload offer is its own claim: placement believes at most the
/// operator's bounds (<c>--max-provider-cpu</c>, <c>--max-provider-memory</c>) of it, and at most what its delivered work
/// earned it (<see cref="DeliveryTrust"/>).
/// </summary>
internal sealed class PlacementCandidates(OpenWorkloads open, ProviderDirectory directory, WorkloadSupervisorSettings settings, DeliveryTrust trust, WorkloadClock clock)
{
    /// <summary>Connected providers that offer workloads and take work (not draining or closing), with what open workloads hold there.</summary>
    public List<PlacementCandidate> Collect()
    {
        var used = new Dictionary<string, (double Cpu, long Memory, int Held)>(StringComparer.Ordinal);
        void Hold(string provider, WorkloadSpec spec)
        {
            var (cpu, memory, held) = used.GetValueOrDefault(provider);
            used[provider] = (cpu + spec.CpuCores, memory + spec.MemoryMb, held + 1);
        }

        foreach (var entry in open.All)
        {
            var w = entry.Workload;
            if (w.Provider is { } primary)
            {
                Hold(primary, w.Spec);
            }

            if (w.Revoking is { } revoking)
            {
                Hold(revoking.Provider, w.Spec); // until the old copy is confirmed gone, its room is not free
            }

            foreach (var standby in w.Standbys)
            {
                Hold(standby.Provider, w.Spec);
            }
        }

        trust.Observe(open.All.Select(e => e.Workload), clock.Now());
        var candidates = new List<PlacementCandidate>();
        foreach (var session in directory.Snapshot)
        {
            if (session.WorkloadCapacity is { } cap && session.Accepting)
            {
                var (cpu, memory, held) = used.GetValueOrDefault(session.ProviderId);
                candidates.Add(trust.Limit(new PlacementCandidate(session.ProviderId, session.Name, Math.Min(cap.CpuCores, settings.MaxProviderCpuCores), Math.Min(cap.MemoryMb, settings.MaxProviderMemoryMb),
                    cpu, memory, new WorkloadPrice(cap.CpuMsatPerCoreSecond, cap.MemoryMsatPerGbSecond), cap.Isolation, held)));
            }
        }

        return candidates;
    }
}
