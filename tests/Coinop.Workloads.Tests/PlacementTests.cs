using Coinop.Core.Pricing;
using Coinop.Core.Workloads;
using Coinop.Market.Workloads;

namespace Coinop.Workloads.Tests;

/// <summary>Placement by advertised capacity (pure; no processes).</summary>
public sealed class PlacementTests
{
    private static readonly WorkloadPrice Price = new(20, 5);

    private static WorkloadSpec Spec(double cpu = 1, long memory = 512, int standbys = 0) =>
        new("sleep", ["60"], cpu, memory, TimeSpan.FromHours(1), null, RestartPolicy.Never, standbys, Checkpointed: false);

    private static PlacementCandidate Candidate(string id, double cpu = 4, long memory = 4096, double usedCpu = 0, long usedMemory = 0, WorkloadPrice? price = null,
        string isolation = IsolationLevels.Bubblewrap) =>
        new(id, "name-" + id, cpu, memory, usedCpu, usedMemory, price ?? Price, isolation);

    [Fact]
    public void The_primary_is_the_provider_with_most_free_cpu_and_standbys_are_distinct_others()
    {
        var (plan, problem) = WorkloadPlacement.Plan(Spec(standbys: 2),
            null, [Candidate("a", usedCpu: 3), Candidate("b"), Candidate("c", usedCpu: 1), Candidate("d", usedCpu: 2)], null);
        Assert.Null(problem);
        Assert.Equal("b", plan!.Primary.ProviderId);
        Assert.Equal(["c", "d"], plan.Standbys.Select(s => s.ProviderId));
    }

    [Fact]
    public void Only_providers_with_room_for_both_cpu_and_memory_are_used()
    {
        var candidates = new[] { Candidate("a", usedCpu: 3.5), Candidate("b", usedMemory: 3800), Candidate("c", cpu: 1, memory: 512) };
        Assert.Equal("c", WorkloadPlacement.Plan(Spec(), null, candidates, null).Plan!.Primary.ProviderId);
        var (none, problem) = WorkloadPlacement.Plan(Spec(cpu: 2), null, candidates, null);
        Assert.Null(none);
        Assert.Contains("no provider online has room for 2 cores and 512 MB", problem, StringComparison.Ordinal);
        Assert.Contains("1 standbys need 1 more providers", WorkloadPlacement.Plan(Spec(standbys: 1), null, [Candidate("a")], null).Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void A_pinned_provider_is_found_by_id_never_by_name_and_must_have_room()
    {
        var candidates = new[] { Candidate("a"), Candidate("b", usedCpu: 3.5) };
        Assert.Equal("a", WorkloadPlacement.Plan(Spec(), "a", candidates, null).Plan!.Primary.ProviderId);
        Assert.Contains("is not online", WorkloadPlacement.Plan(Spec(), "name-a", candidates, null).Problem, StringComparison.Ordinal);
        // A provider whose display name is another's id is not that provider.
        Assert.Contains("is not online", WorkloadPlacement.Plan(Spec(), "c", [new PlacementCandidate("x", "c", 4, 4096, 0, 0, Price)], null).Problem, StringComparison.Ordinal);
        Assert.Contains("has no room", WorkloadPlacement.Plan(Spec(), "b", candidates, null).Problem, StringComparison.Ordinal);
        Assert.Contains("is not online", WorkloadPlacement.Plan(Spec(), "zed", candidates, null).Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void A_display_name_pins_only_when_one_known_provider_carries_it()
    {
        (string, string)[] known = [("id-1", "alice"), ("id-2", "bob"), ("id-3", "id-1")];
        Assert.Equal(("id-2", (string?)null), WorkloadPlacement.ResolvePin("bob", known));
        Assert.Equal(("id-1", (string?)null), WorkloadPlacement.ResolvePin("id-1", known)); // the id, not id-3 named after it
        Assert.Equal(("zed", (string?)null), WorkloadPlacement.ResolvePin("zed", known)); // unknown: placement says it is not online
        var (id, problem) = WorkloadPlacement.ResolvePin("alice", [.. known, ("id-4", "alice")]);
        Assert.Null(id);
        Assert.Contains("2 providers are named 'alice'", problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Providers_take_turns_by_what_they_hold_whatever_capacity_they_claim()
    {
        // A provider claiming a million cores is first only while it holds no more than the others.
        var liar = Candidate("liar", cpu: 1e6, memory: 1L << 40);
        var honest = Candidate("honest", usedCpu: 1);
        Assert.Equal("liar", WorkloadPlacement.Plan(Spec(), null, [liar with { Held = 1, UsedCpuCores = 1 }, honest with { Held = 1 }], null).Plan!.Primary.ProviderId);
        Assert.Equal("honest", WorkloadPlacement.Plan(Spec(), null, [liar with { Held = 2, UsedCpuCores = 2 }, honest with { Held = 1 }], null).Plan!.Primary.ProviderId);
    }

    [Fact]
    public void Checkpointed_workloads_go_only_to_providers_holding_a_sealed_key()
    {
        var candidates = new[] { Candidate("a"), Candidate("b", usedCpu: 2), Candidate("c", usedCpu: 3) };
        var (plan, _) = WorkloadPlacement.Plan(Spec(standbys: 1), null, candidates, new HashSet<string> { "b", "c" });
        Assert.Equal(("b", "c"), (plan!.Primary.ProviderId, plan.Standbys.Single().ProviderId));
        Assert.Equal("c", WorkloadPlacement.Respawn(Spec(), "b", candidates, new HashSet<string> { "b", "c" })!.ProviderId);
    }

    [Fact]
    public void A_respawn_avoids_the_lost_provider_unless_it_is_the_only_one_with_room()
    {
        Assert.Equal("b", WorkloadPlacement.Respawn(Spec(), "a", [Candidate("a"), Candidate("b", usedCpu: 3)], null)!.ProviderId);
        Assert.Equal("a", WorkloadPlacement.Respawn(Spec(), "a", [Candidate("a"), Candidate("b", usedCpu: 3.5)], null)!.ProviderId);
        Assert.Null(WorkloadPlacement.Respawn(Spec(cpu: 8), "a", [Candidate("a")], null));
    }

    [Fact]
    public void The_quote_pays_the_standbys_reserved_capacity_at_their_own_rates()
    {
        var (plan, _) = WorkloadPlacement.Plan(Spec(cpu: 0.5, memory: 2048, standbys: 1), "a",
            [Candidate("a"), Candidate("b", price: new WorkloadPrice(10, 1))], null);
        Assert.Equal(20m + 7m, plan!.Quote(Spec(cpu: 0.5, memory: 2048, standbys: 1)).MsatPerSecond);
    }

    [Fact]
    public void A_workload_that_requires_a_sandbox_never_goes_to_a_provider_without_one()
    {
        // The unsandboxed provider has the most room; a provider still sending an old level string counts by its prefix.
        var candidates = new[]
        {
            Candidate("a", isolation: IsolationLevels.None), Candidate("b", usedCpu: 2, isolation: IsolationLevels.Docker),
            Candidate("c", usedCpu: 1, isolation: "process"), Candidate("d", usedCpu: 3, isolation: "bubblewrap+approx-limits"),
        };
        var (plan, _) = WorkloadPlacement.Plan(Spec(standbys: 1), null, candidates, null);
        Assert.Equal(("b", "d"), (plan!.Primary.ProviderId, plan.Standbys.Single().ProviderId));
        Assert.Equal("b", WorkloadPlacement.Respawn(Spec(), "d", candidates, null)!.ProviderId);
        Assert.Contains("provider 'a' runs copies without a sandbox", WorkloadPlacement.Plan(Spec(), "a", candidates, null).Problem, StringComparison.Ordinal);

        // A consumer who accepts isolation 'none' may land anywhere, the unsandboxed provider first (most room).
        var anyIsolation = Spec() with { Isolation = WorkloadIsolation.None };
        Assert.Equal("a", WorkloadPlacement.Plan(anyIsolation, null, candidates, null).Plan!.Primary.ProviderId);
        Assert.Null(WorkloadPlacement.Plan(Spec(), null, [candidates[0], candidates[2]], null).Plan);
    }
}
