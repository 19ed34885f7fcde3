using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Serialization;
using Coinop.Core.Protocol;
using Coinop.Core.Text;
using Coinop.Core.Work;
using Coinop.Market.Gateway;
using Coinop.Market.Hosting;
using Coinop.Market.Inference;
using Coinop.Market.Payments;
using Coinop.Storage.Cluster;
using Coinop.Storage.Work;
using Microsoft.AspNetCore.Http;

namespace Coinop.Market.Cluster;

/// <summary>One node as <c>GET /api/nodes</c> shows it.</summary>
/// <param name="State"><c>ready</c>, <c>draining</c>, <c>left</c>, or <c>dead</c> (its heartbeat lapsed).</param>
/// <param name="InFlight">Jobs running on the providers it holds (its own and forwarded ones), as last published.</param>
public sealed record NodeView(
    string NodeId,
    string NodeUrl,
    string PublicUrl,
    string State,
    bool ThisNode,
    DateTimeOffset StartedAt,
    DateTimeOffset HeartbeatAt,
    IReadOnlyList<string> Providers,
    int InFlight,
    IReadOnlyList<string> Duties);

public sealed record NodesView(string NodeId, IReadOnlyList<NodeView> Nodes);

/// <summary>What <c>GET /healthz</c> answers: 200 once the node joined the market and can route, 503 otherwise.</summary>
/// <param name="Status"><c>ready</c>, <c>joining</c>, <c>draining</c>, <c>unreachable</c> (the store) or <c>superseded</c>.</param>
/// <param name="Lightning">The mint's Lightning backend; <paramref name="DemoMoney"/> when its money is not real.</param>
public sealed record HealthView(string Status, string NodeId, int Nodes, string Lightning, bool DemoMoney);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(NodesView))]
[JsonSerializable(typeof(HealthView))]
[JsonSerializable(typeof(LoadFigures))]
public sealed partial class ClusterJsonContext : JsonSerializerContext;

/// <summary>
/// <c>GET /api/nodes</c> (operator: <c>Authorization: Bearer</c> the admin token): the market's nodes, the providers each
/// holds, their load and the duties each holds. <c>GET /healthz</c>: this node's readiness, for a load balancer.
/// </summary>
public static class NodesApi
{
    public static async Task ListAsync(HttpContext http, NodeRegistry registry, ClusterView view, ProviderDirectory directory, IProviderLinkStore links,
        IWorkStore work, MarketIdentity identity, TimeProvider time)
    {
        if (PaymentIntake.Bearer(http.Request) is not { } bearer
            || !CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(bearer), Encoding.UTF8.GetBytes(identity.AdminToken)))
        {
            await PaymentErrors.Unauthorized("send 'Authorization: Bearer <the token in the market's data directory, admin.token>'")
                .WriteResponseAsync(http.Response, ErrorShape.OpenAi, http.RequestAborted);
            return;
        }

        var ct = http.RequestAborted;
        await view.RefreshAsync(ct);
        var now = time.GetUtcNow();
        var open = await links.ListOpenAsync(ct);
        var duties = await work.ListOpenAsync(WorkKinds.NodeDuty, 1000, ct);
        var views = new List<NodeView>();
        foreach (var node in view.Nodes)
        {
            var held = open.Where(l => l.Link.NodeId == node.NodeId).ToList();
            var state = node.IsLiveAt(now) ? WireEnum.Name(node.State) : node.State == Core.Cluster.NodeState.Left ? "left" : "dead";
            var providers = node.NodeId == registry.NodeId
                ? directory.Snapshot.Select(s => s.ProviderId).Order(StringComparer.Ordinal).ToList()
                : held.Select(l => l.Link.ProviderId).Order(StringComparer.Ordinal).ToList();
            var inFlight = node.NodeId == registry.NodeId ? directory.Snapshot.Sum(s => s.InFlight) : held.Sum(l => l.Figures.InFlight);
            var holding = duties.Where(d => d.Holder?.OwnerId == node.NodeId && d.Holder.IncarnationId == node.Incarnation && !d.LeaseLapsed)
                .Select(d => d.Item.Id.StartsWith("duty:", StringComparison.Ordinal) ? d.Item.Id[5..] : d.Item.Id).Order(StringComparer.Ordinal).ToList();
            views.Add(new NodeView(node.NodeId, node.NodeUrl, node.PublicUrl, state, node.NodeId == registry.NodeId, node.StartedAt, node.HeartbeatAt,
                providers, inFlight, holding));
        }

        await Results.Json(new NodesView(registry.NodeId, views), ClusterJsonContext.Default.NodesView).ExecuteAsync(http);
    }

    public static IResult Health(NodeRegistry registry, ClusterView view, Mint.Lightning.ILightningBackend lightning)
    {
        var status = registry.IsReady && !view.Loaded.IsCompleted ? "joining" : registry.Status;
        var body = new HealthView(status, registry.NodeId, view.Nodes.Count, lightning.Name, lightning.IsDemoMoney);
        return Results.Json(body, ClusterJsonContext.Default.HealthView, statusCode: status == "ready" ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable);
    }
}
