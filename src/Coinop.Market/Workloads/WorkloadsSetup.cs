using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Coinop.Market.Workloads;

/// <summary>Registers the Workloads feature's services and endpoints.</summary>
public static class WorkloadsSetup
{
    public static IServiceCollection AddWorkloads(this IServiceCollection services) => services;

    public static IEndpointRouteBuilder MapWorkloads(this IEndpointRouteBuilder endpoints) => endpoints;
}
