using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Coinop.Market.Gateway;

/// <summary>Registers the ProviderGateway feature's services and endpoints.</summary>
public static class ProviderGatewaySetup
{
    public static IServiceCollection AddProviderGateway(this IServiceCollection services) => services;

    public static IEndpointRouteBuilder MapProviderGateway(this IEndpointRouteBuilder endpoints) => endpoints;
}
