using Coinop.Market.Gateway;
using Coinop.Storage.Cluster;
using Coinop.Storage.Work;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Coinop.Market.Cluster;

/// <summary>
/// Registers the Cluster feature: several market nodes on one store acting as one market. Every node runs it (a single
/// node is a market of one): the node registry, provider link ownership, the shared routing view, forwarding between
/// nodes, duties and the dead-node takeover.
/// </summary>
public static class ClusterSetup
{
    public static IServiceCollection AddCluster(this IServiceCollection services)
    {
        services.AddOptions<ClusterOptions>().ValidateDataAnnotations().ValidateOnStart();
        services.AddMetrics();
        services.AddSingleton<ClusterMetrics>();
        services.AddSingleton<INodeStore, NodeStore>();
        services.AddSingleton<IProviderLinkStore, ProviderLinkStore>();
        services.TryAddSingleton<IWorkStore, WorkStore>();
        services.AddSingleton<NodeAuth>();
        services.AddSingleton<NodeRegistry>();
        services.AddHostedService(sp => sp.GetRequiredService<NodeRegistry>());
        services.AddSingleton<ForwardClient>();
        services.AddSingleton<ForwardEndpoint>();
        services.AddSingleton<ClusterView>();
        services.AddHostedService(sp => sp.GetRequiredService<ClusterView>());
        services.AddSingleton<IRoutableProviders>(sp => sp.GetRequiredService<ClusterView>());
        services.AddSingleton<IProviderLinks, ProviderLinks>();
        services.AddSingleton<LinkPublisher>();
        services.AddHostedService(sp => sp.GetRequiredService<LinkPublisher>());
        services.AddSingleton<NodeDuties>();
        services.AddSingleton<NodeTakeover>();
        services.AddHostedService(sp => sp.GetRequiredService<NodeTakeover>());
        return services;
    }

    public static IEndpointRouteBuilder MapCluster(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/healthz", NodesApi.Health);
        endpoints.MapGet("/api/nodes", NodesApi.ListAsync);
        endpoints.MapPost(ForwardClient.Path, (HttpContext http, ForwardEndpoint forward) => forward.HandleAsync(http));
        return endpoints;
    }
}
