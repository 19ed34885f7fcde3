using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Coinop.TestKit;
using Coinop.Workloads.Tests.Infrastructure;

namespace Coinop.EndToEnd.Tests;

/// <summary>
/// Workloads on several market nodes: one node at a time supervises them (the single writer), the others relay consumers'
/// calls to it and send workload providers there; kill -9 of that node hands supervision to another without ever two
/// copies of a workload alive (the process table is read all along).
/// </summary>
[Collection(nameof(ManyProcesses))]
public class MultiNodeWorkloadTests
{
    [Fact]
    public async Task Kill_9_of_the_node_supervising_a_workload_with_a_standby_hands_supervision_over_and_never_two_copies_run()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var cluster = new Cluster();
        await using var nodes = await MarketNodes.StartAsync(cluster, 2);
        var supervisor = await SupervisorAsync(cluster, nodes, null);
        var other = supervisor == nodes.Url(0) ? nodes.Url(1) : nodes.Url(0);
        var marker = "wl-" + Guid.NewGuid().ToString("N")[..12];
        const string Script = "echo started epoch $COINOP_EPOCH; while :; do sleep 1; done";
        using var watch = CopyWatcher.Start(["sh", "-c", Script, marker]);
        try
        {
            // Both providers list the node that does not supervise first: it sends them on to the one that does.
            var providers = new List<string>();
            foreach (var name in new[] { "a", "b" })
            {
                var (_, id) = await cluster.StartProviderAsync(name, $"{other},{supervisor}", "--workloads", "process", "--cpu", "1", "--memory", "1024");
                providers.Add(id);
            }

            foreach (var id in providers)
            {
                await Eventually.WaitAsync(() => NodeOfAsync(cluster, nodes, id), n => n == supervisor, $"provider {id} linked to the supervising node", cancellationToken: ct);
            }

            // Submitted at the other node: relayed to the supervisor.
            var request = new JsonObject
            {
                ["command"] = "sh",
                ["args"] = new JsonArray("-c", Script, marker),
                ["cpu"] = 0.2,
                ["memory_mb"] = 64,
                ["standbys"] = 1,
            };
            var ownerKey = "owner-" + Guid.NewGuid().ToString("N");
            using var submit = new HttpRequestMessage(HttpMethod.Post, other + "/api/workloads") { Content = JsonContent.Create(request) };
            submit.Headers.Add("X-Coinop-Owner-Key", ownerKey);
            using var submitted = await cluster.Http.SendAsync(submit, ct);
            var submitText = await submitted.Content.ReadAsStringAsync(ct);
            Assert.True(submitted.StatusCode == HttpStatusCode.Created, submitText);
            var workloadId = JsonNode.Parse(submitText)!["id"]!.GetValue<string>();
            await WaitForWorkloadAsync(cluster, other, workloadId, ownerKey, w => (string?)w["state"] == "live" && w["standbys"]!.AsArray().Count == 1, "live with its standby");
            await watch.WaitForEpochAsync(1);

            var supervisorIndex = supervisor == nodes.Url(0) ? 0 : 1;
            nodes.Process(supervisorIndex).KillHard();
            Assert.Equal(137, await nodes.Process(supervisorIndex).WaitForExitAsync());

            // The survivor takes over supervision; the providers relink to it; the workload is supervised there.
            await SupervisorAsync(cluster, nodes, other, expected: other);
            foreach (var id in providers)
            {
                await Eventually.WaitAsync(() => NodeOfAsync(cluster, nodes, id, other), n => n == other, $"provider {id} relinked to the survivor", cancellationToken: ct);
            }

            await WaitForWorkloadAsync(cluster, other, workloadId, ownerKey, w => (string?)w["state"] == "live", "live under the new supervisor");
            await Eventually.WaitAsync(() => Task.FromResult(watch.Current.Count), n => n == 1, "one copy running", cancellationToken: ct);

            // The new supervisor commands the copies: a cancel stops the one that runs.
            using var cancel = new HttpRequestMessage(HttpMethod.Delete, $"{other}/api/workloads/{workloadId}");
            cancel.Headers.Add("X-Coinop-Owner-Key", ownerKey);
            using var cancelled = await cluster.Http.SendAsync(cancel, ct);
            Assert.True(cancelled.StatusCode == HttpStatusCode.OK, await cancelled.Content.ReadAsStringAsync(ct));
            await watch.WaitForNoneAsync();
            watch.AssertSingleWriter();
        }
        catch (Exception ex) when (ex is not OperationCanceledException and not Xunit.Sdk.XunitException)
        {
            throw new InvalidOperationException(ex.Message + "\n" + cluster.Diagnostics(), ex);
        }
    }

    /// <summary>The URL of the node holding the workload supervisor duty, as <paramref name="askAt"/> (or the first node) reports it.</summary>
    private static Task<string> SupervisorAsync(Cluster cluster, MarketNodes nodes, string? askAt, string? expected = null) =>
        Eventually.WaitAsync<string>(async () =>
        {
            var view = await NodesAsync(cluster, nodes, askAt ?? nodes.Url(0));
            return view.GetProperty("nodes").EnumerateArray()
                .Where(n => n.GetProperty("state").GetString() == "ready" && n.GetProperty("duties").EnumerateArray().Any(d => d.GetString() == "workload_supervisor"))
                .Select(n => n.GetProperty("node_url").GetString()!)
                .FirstOrDefault() ?? "";
        }, url => expected is null ? url is { Length: > 0 } : url == expected, expected ?? "a node supervising workloads", cancellationToken: TestContext.Current.CancellationToken);

    private static async Task<string?> NodeOfAsync(Cluster cluster, MarketNodes nodes, string providerId, string? askAt = null)
    {
        var view = await NodesAsync(cluster, nodes, askAt ?? nodes.Url(0));
        return view.GetProperty("nodes").EnumerateArray()
            .Where(n => n.GetProperty("state").GetString() == "ready" && n.GetProperty("providers").EnumerateArray().Any(p => p.GetString() == providerId))
            .Select(n => n.GetProperty("node_url").GetString())
            .FirstOrDefault();
    }

    private static async Task<JsonElement> NodesAsync(Cluster cluster, MarketNodes nodes, string url)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, url + "/api/nodes");
        request.Headers.Authorization = new("Bearer", nodes.AdminToken);
        using var response = await cluster.Http.SendAsync(request, TestContext.Current.CancellationToken);
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)).RootElement.Clone();
    }

    private static Task<JsonNode> WaitForWorkloadAsync(Cluster cluster, string url, string id, string ownerKey, Func<JsonNode, bool> done, string what) =>
        Eventually.WaitAsync<JsonNode>(async () =>
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, $"{url}/api/workloads/{id}");
            request.Headers.Add("X-Coinop-Owner-Key", ownerKey);
            using var response = await cluster.Http.SendAsync(request, TestContext.Current.CancellationToken);
            return JsonNode.Parse(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
        },
            w => w is not null && done(w), what, TimeSpan.FromSeconds(90), TestContext.Current.CancellationToken);
}
