using Coinop.Core.Pricing;
using Coinop.Core.Workloads;
using Coinop.Market.Workloads;
using CsCheck;

namespace Coinop.Market.Tests.Workloads;

/// <summary>
/// Placement bounded by delivered work (issue 9, item 8), driven through the real <see cref="DeliveryTrust"/> and
/// <see cref="WorkloadPlacement"/>: whatever a provider claims, what it is given is bounded by what the market saw it run.
/// </summary>
public class DeliveryTrustProperties
{
    private const string Liar = "liar";
    private const string Honest = "honest";
    private static readonly DateTimeOffset Now = new(2026, 12, 4, 12, 0, 0, TimeSpan.Zero);
    private static readonly DeliveryTrustSettings Settings = new(UnprovenCpuCores: 4, UnprovenMemoryMb: 8192, ProvingTime: TimeSpan.FromMinutes(1));

    private static WorkloadSpec Spec(double cpu, long memoryMb = 256) =>
        new("sleep", ["600"], cpu, memoryMb, TimeSpan.FromHours(1), null, RestartPolicy.Never, 0, false, WorkloadIsolation.None);

    /// <summary>A workload the market placed on <paramref name="provider"/>, in <paramref name="state"/> since <paramref name="age"/> ago.</summary>
    private static Workload Placed(string provider, double cpu, WorkloadState state, TimeSpan age) =>
        new("w-" + Guid.NewGuid().ToString("N"), Spec(cpu), state, Now - age, null, provider, 1, null, Now - age, [], 1, Now + TimeSpan.FromHours(1), null, [],
            Now - age);

    private static readonly Gen<Workload> History =
        Gen.Select(Gen.Bool.Select(b => b ? Liar : Honest), Gen.Int[1, 16], Gen.Enum<WorkloadState>(), Gen.Int[0, 180])
            .Select((provider, quarters, state, seconds) => Placed(provider, quarters / 4.0, state, TimeSpan.FromSeconds(seconds)));

    /// <summary>What the model says a provider delivered: its live primaries older than the proving time.</summary>
    private static double DeliveredCpu(IEnumerable<Workload> history, string provider) =>
        history.Where(w => w.Provider == provider && w.State == WorkloadState.Live && Now - w.Since >= Settings.ProvingTime).Sum(w => w.Spec.CpuCores);

    /// <summary>Places the specs one after the other on the two providers; returns who took each (null: refused).</summary>
    private static List<string?> PlaceAll(DeliveryTrust trust, double liarClaim, double honestClaim, IEnumerable<double> specs)
    {
        var price = new WorkloadPrice(1, 1);
        var used = new Dictionary<string, (double Cpu, int Held)> { [Liar] = (0, 0), [Honest] = (0, 0) };
        var placed = new List<string?>();
        foreach (var cpu in specs)
        {
            PlacementCandidate Candidate(string id, double claim) =>
                trust.Limit(new PlacementCandidate(id, id, claim, 1L << 40, used[id].Cpu, 0, price, IsolationLevels.None, used[id].Held));
            var (plan, _) = WorkloadPlacement.Plan(Spec(cpu), null, [Candidate(Liar, liarClaim), Candidate(Honest, honestClaim)], null);
            var winner = plan?.Primary.ProviderId;
            if (winner is not null)
            {
                used[winner] = (used[winner].Cpu + cpu, used[winner].Held + 1);
            }

            placed.Add(winner);
        }

        return placed;
    }

    [Fact]
    public void A_provider_claiming_a_million_cpus_never_gets_more_than_its_delivered_bound_and_the_rest_goes_to_the_honest_one()
    {
        Gen.Select(History.List[0, 12], Gen.Int[1, 32], Gen.Int[1, 16].List[1, 40])
            .Sample((history, honestCpu, quarters) =>
            {
                var trust = new DeliveryTrust(Settings);
                trust.Observe(history, Now);
                var specs = quarters.Select(q => q / 4.0).ToList();
                var placed = PlaceAll(trust, liarClaim: 1e6, honestClaim: honestCpu, specs);

                // The liar never holds more than the bound its delivered work earned, whatever it claims.
                var liarBound = Math.Max(Settings.UnprovenCpuCores, Settings.Growth * DeliveredCpu(history, Liar));
                var liarHeld = specs.Where((_, i) => placed[i] == Liar).Sum();
                Assert.True(liarHeld <= liarBound + 1e-9, $"liar holds {liarHeld} cores, bound {liarBound}");

                // Claiming a million cores buys nothing over claiming exactly that bound: the same placements.
                Assert.Equal(placed, PlaceAll(trust, liarClaim: liarBound, honestClaim: honestCpu, specs));

                // Nothing is refused while the honest provider still has room within its own bound.
                var honestRoom = Math.Min(honestCpu, Math.Max(Settings.UnprovenCpuCores, Settings.Growth * DeliveredCpu(history, Honest)));
                var honestHeld = 0.0;
                for (var i = 0; i < specs.Count; i++)
                {
                    Assert.False(placed[i] is null && honestHeld + specs[i] <= honestRoom + 1e-9, $"spec {i} ({specs[i]} cores) refused with honest room left");
                    honestHeld += placed[i] == Honest ? specs[i] : 0;
                }
            }, iter: 500);
    }

    [Fact]
    public void Delivered_work_only_grows_from_copies_live_for_the_proving_time_and_is_never_forgotten()
    {
        Gen.Select(History.List[0, 12], History.List[0, 12]).Sample((first, second) =>
        {
            var trust = new DeliveryTrust(Settings);
            trust.Observe(first, Now);
            trust.Observe(second, Now);
            foreach (var provider in new[] { Liar, Honest })
            {
                var expected = Math.Max(DeliveredCpu(first, provider), DeliveredCpu(second, provider));
                Assert.Equal(expected, trust.Delivered(provider).CpuCores, 9);
                Assert.Equal(Math.Max(Settings.UnprovenCpuCores, Settings.Growth * expected), trust.Bound(provider).CpuCores, 9);
            }

            Assert.Equal((Settings.UnprovenCpuCores, Settings.UnprovenMemoryMb), trust.Bound("never-seen"));
        }, iter: 500);
    }
}
