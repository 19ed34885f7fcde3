using Coinop.Core.Pricing;
using Coinop.Core.Workloads;
using Coinop.Market.Gateway;

namespace Coinop.Market.Workloads;

/// <summary>Which connected providers could take a copy or a standby now, and what the open workloads already hold on each.</summary>
internal static class PlacementCandidates
{
    /// <summary>Connected providers that offer workloads and take work (not draining or closing), with what open workloads hold there.</summary>
    public static List<PlacementCandidate> Collect(IEnumerable<OpenWorkload> open, IEnumerable<ProviderSession> sessions)
    {
        var used = new Dictionary<string, (double Cpu, long Memory)>(StringComparer.Ordinal);
        void Hold(string provider, WorkloadSpec spec)
        {
            var (cpu, memory) = used.GetValueOrDefault(provider);
            used[provider] = (cpu + spec.CpuCores, memory + spec.MemoryMb);
        }

        foreach (var entry in open)
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

        var candidates = new List<PlacementCandidate>();
        foreach (var session in sessions)
        {
            if (session.WorkloadCapacity is { } cap && session.Accepting)
            {
                var (cpu, memory) = used.GetValueOrDefault(session.ProviderId);
                candidates.Add(new PlacementCandidate(session.ProviderId, session.Name, cap.CpuCores, cap.MemoryMb, cpu, memory,
                    new WorkloadPrice(cap.CpuMsatPerCoreSecond, cap.MemoryMsatPerGbSecond), cap.Isolation));
            }
        }

        return candidates;
    }
}
