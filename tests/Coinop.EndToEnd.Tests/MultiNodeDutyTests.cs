using System.Text.Json;
using Coinop.TestKit;

namespace Coinop.EndToEnd.Tests;

/// <summary>
/// The market's background work (sweeps, pruning, payment recovery, change restock, takeover, workload supervision) runs
/// as duties: each on exactly one node at a time, and on another one once that node is killed (kill -9).
/// </summary>
[Collection(nameof(ManyProcesses))]
public class MultiNodeDutyTests
{
    private static readonly string[] Duties =
        ["change_stock", "melt_recovery", "node_takeover", "response_pruning", "stale_rows", "workload_supervisor"];

    [Fact]
    public async Task Kill_9_of_the_node_holding_the_sweeps_and_recoveries_hands_each_of_them_to_one_live_node()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var cluster = new Cluster();
        await using var nodes = await MarketNodes.StartAsync(cluster, 3, paid: true);
        try
        {
            // Every duty is held, each by one node.
            var before = await Eventually.WaitAsync(() => HoldersAsync(cluster, nodes, nodes.Url(2)), h => h is not null && Duties.All(d => h.TryGetValue(d, out var n) && n.Count == 1),
                "every duty held by one node", TimeSpan.FromSeconds(90), ct);
            var victim = before["melt_recovery"][0];
            var index = Enumerable.Range(0, 3).Single(i => nodes.Url(i) == victim);
            var survivor = nodes.Url((index + 1) % 3);
            nodes.Process(index).KillHard();

            // Until the victim's leases lapse its duties show under it (a dead node); never under two nodes. Then each is
            // taken by one of the live nodes.
            var doubled = new List<string>();
            var after = await Eventually.WaitAsync(async () =>
            {
                var holders = await HoldersAsync(cluster, nodes, survivor);
                doubled.AddRange(holders!.Where(h => h.Value.Count > 1).Select(h => $"{h.Key} held by {string.Join(", ", h.Value)}"));
                return holders;
            }, h => h is not null && Duties.All(d => h.TryGetValue(d, out var n) && n.Count == 1 && n[0] != victim), "every duty taken over by a live node",
                TimeSpan.FromSeconds(90), ct);
            Assert.Empty(doubled);
            Assert.All(Duties, d => Assert.NotEqual(victim, after[d][0]));
        }
        catch (Exception ex) when (ex is not OperationCanceledException and not Xunit.Sdk.XunitException)
        {
            throw new InvalidOperationException(ex.Message + "\n" + cluster.Diagnostics(), ex);
        }
    }

    /// <summary>For each duty, the URLs of the nodes <c>/api/nodes</c> (asked at <paramref name="url"/>) shows holding it.</summary>
    private static async Task<Dictionary<string, List<string>>?> HoldersAsync(Cluster cluster, MarketNodes nodes, string url)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, url + "/api/nodes");
        request.Headers.Authorization = new("Bearer", nodes.AdminToken);
        using var response = await cluster.Http.SendAsync(request, TestContext.Current.CancellationToken);
        var view = JsonDocument.Parse(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)).RootElement;
        var holders = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var node in view.GetProperty("nodes").EnumerateArray())
        {
            foreach (var duty in node.GetProperty("duties").EnumerateArray())
            {
                var name = duty.GetString()!;
                if (!holders.TryGetValue(name, out var list))
                {
                    holders[name] = list = [];
                }

                list.Add(node.GetProperty("node_url").GetString()!);
            }
        }

        return holders;
    }
}
