using System.Net;
using Coinop.Market.Cluster;

namespace Coinop.Market.Tests.Cluster;

/// <summary>
/// Routes match paths whatever their case, but the node that does not supervise workloads relayed only
/// <c>/api/workloads…</c> spelled in lower case: <c>/API/WORKLOADS</c> was served by that node itself, whose supervisor
/// never loads, and a submit or cancel hung until the consumer gave up.
/// </summary>
public class WorkloadPathCaseTests
{
    [Fact]
    public async Task A_workload_call_in_another_case_on_a_node_that_does_not_supervise_is_relayed_not_left_hanging()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var nodes = await TestNodes.StartAsync(2);
        await Gateway.Eventually.TrueAsync(() => Task.FromResult(Enumerable.Range(0, 2).Count(i => TestNodes.Get<WorkloadSupervision>(nodes[i]).IsHeld) == 1
            && Enumerable.Range(0, 2).All(i => TestNodes.Get<WorkloadSupervision>(nodes[i]).IsHeld || TestNodes.Get<WorkloadSupervision>(nodes[i]).Holder is not null)), ct);
        var other = nodes[TestNodes.Get<WorkloadSupervision>(nodes[0]).IsHeld ? 1 : 0];

        foreach (var path in new[] { "/API/WORKLOADS", "/Api/Workloads" })
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = System.Net.Http.Json.JsonContent.Create(new { command = "sleep", args = new[] { "60" } }) };
            request.Headers.Add("X-Coinop-Owner-Key", "case-owner-key-0123456789abcdef");
            // Hung before: no answer at all. Relayed, the supervising node answers (no provider has room: 503).
            using var response = await other.Http.SendAsync(request, ct).WaitAsync(TimeSpan.FromSeconds(30), ct);
            var body = await response.Content.ReadAsStringAsync(ct);
            Assert.True(response.StatusCode == HttpStatusCode.ServiceUnavailable, $"{path}: {(int)response.StatusCode} {body}");
            Assert.Contains("no_capacity", body, StringComparison.Ordinal);
        }
    }
}
