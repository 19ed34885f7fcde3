using Coinop.Core.Pricing;
using Coinop.Core.Workloads;

namespace Coinop.Market.Workloads;

/// <summary>
/// A provider that could take a copy or a standby: what placement believes it offers (its claim, bounded: see
/// <see cref="PlacementCandidates"/>), its isolation level, what is already held there and how many copies and
/// standbys that is.
/// </summary>
public sealed record PlacementCandidate(string ProviderId, string Name, double CpuCores, long MemoryMb, double UsedCpuCores, long UsedMemoryMb, WorkloadPrice Price,
    string Isolation = IsolationLevels.None, int Held = 0)
{
    public double FreeCpuCores => CpuCores - UsedCpuCores;

    public long FreeMemoryMb => MemoryMb - UsedMemoryMb;

    public bool Fits(WorkloadSpec spec) => FreeCpuCores + 1e-9 >= spec.CpuCores && FreeMemoryMb >= spec.MemoryMb;

    /// <summary>Whether its isolation is what the workload requires (a provider without a sandbox only for <c>none</c>).</summary>
    public bool Isolates(WorkloadSpec spec) => IsolationLevels.Satisfies(Isolation, spec.Isolation);
}

/// <summary>Where a new workload goes: its primary and its standbys (all distinct), and the quote they make.</summary>
public sealed record PlacementPlan(PlacementCandidate Primary, IReadOnlyList<PlacementCandidate> Standbys)
{
    public WorkloadQuote Quote(WorkloadSpec spec) =>
        WorkloadQuote.For(spec.CpuCores, spec.MemoryMb, Primary.Price, Standbys.Select(s => s.Price));
}

/// <summary>
/// Placement by bounded capacity: a copy or a standby goes only where the provider's free CPU and memory (its bounded
/// offer minus the copies it runs and the standbys it holds) cover the spec; among those, the one holding the fewest
/// copies and standbys first, then the most free CPU, then by id so the choice is deterministic. Holding comes first
/// because it is what the market saw, not what the provider claims: a provider advertising more than it has takes its
/// turn with the others instead of every placement. A pin names a provider by id (see <see cref="ResolvePin"/> for
/// names). A provider whose isolation is below what the workload requires (a plain process for a workload that
/// requires a sandbox) is skipped. A checkpointed workload is placed only on providers the consumer sealed its checkpoint key to.
/// </summary>
public static class WorkloadPlacement
{
    /// <summary>The primary (the pinned provider, when one is named) and distinct standbys, or why there are none.</summary>
    public static (PlacementPlan? Plan, string? Problem) Plan(
        WorkloadSpec spec, string? pinned, IReadOnlyCollection<PlacementCandidate> candidates, IReadOnlySet<string>? keyHolders)
    {
        var eligible = Rank(spec, candidates, keyHolders).ToList();
        PlacementCandidate? primary;
        if (pinned is not null)
        {
            var named = candidates.Where(c => c.ProviderId == pinned).ToList();
            if (named.Count == 0)
            {
                return (null, $"provider '{pinned}' is not online or offers no workloads");
            }

            primary = eligible.FirstOrDefault(named.Contains);
            if (primary is null && !named.Any(c => c.Isolates(spec)))
            {
                return (null, $"provider '{pinned}' runs copies without a sandbox (isolation {named[0].Isolation}); submit with isolation 'none' to use it");
            }

            if (primary is null)
            {
                return (null, $"provider '{pinned}' has no room for {Describe(spec)}{(keyHolders is null ? "" : " or holds no sealed checkpoint key")}");
            }
        }
        else
        {
            primary = eligible.FirstOrDefault();
            if (primary is null)
            {
                return (null, $"no provider online has room for {Describe(spec)}{(keyHolders is null ? "" : " among those holding a sealed checkpoint key")}");
            }
        }

        var standbys = eligible.Where(c => c != primary).Take(spec.Standbys).ToList();
        if (standbys.Count < spec.Standbys)
        {
            return (null, $"{spec.Standbys} standbys need {spec.Standbys} more providers with room for {Describe(spec)}; found {standbys.Count}");
        }

        return (new PlacementPlan(primary, standbys), null);
    }

    /// <summary>A provider for a respawn, preferably not <paramref name="avoid"/> (the one just lost).</summary>
    public static PlacementCandidate? Respawn(WorkloadSpec spec, string avoid, IReadOnlyCollection<PlacementCandidate> candidates, IReadOnlySet<string>? keyHolders)
    {
        var ranked = Rank(spec, candidates, keyHolders).ToList();
        return ranked.FirstOrDefault(c => c.ProviderId != avoid) ?? ranked.FirstOrDefault();
    }

    /// <summary>
    /// The provider id a consumer's <c>--provider</c> names: an id the market knows is that provider; otherwise a display
    /// name pins only when exactly one provider the market knows (online or not) carries it, since any provider can
    /// choose any name. A name two providers share is refused rather than guessed.
    /// </summary>
    public static (string? ProviderId, string? Problem) ResolvePin(string pin, IEnumerable<(string Id, string Name)> known)
    {
        var named = new List<string>();
        foreach (var (id, name) in known)
        {
            if (id == pin)
            {
                return (id, null);
            }

            if (name == pin)
            {
                named.Add(id);
            }
        }

        return named.Count switch
        {
            0 => (pin, null), // unknown: placement reports it is not online
            1 => (named[0], null),
            _ => (null, $"{named.Count} providers are named '{pin}': pin one by id (coinop providers lists them)"),
        };
    }

    private static IEnumerable<PlacementCandidate> Rank(WorkloadSpec spec, IEnumerable<PlacementCandidate> candidates, IReadOnlySet<string>? keyHolders) =>
        candidates
            .Where(c => c.Fits(spec) && c.Isolates(spec) && (keyHolders is null || keyHolders.Contains(c.ProviderId)))
            .OrderBy(c => c.Held)
            .ThenByDescending(c => c.FreeCpuCores)
            .ThenBy(c => c.ProviderId, StringComparer.Ordinal);

    private static string Describe(WorkloadSpec spec) =>
        $"{spec.CpuCores:0.##} cores and {spec.MemoryMb} MB{(spec.Isolation == WorkloadIsolation.Sandbox ? " in a sandbox" : "")}";
}
