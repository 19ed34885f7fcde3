using Coinop.Core.Heartbeats;
using Coinop.Market.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Coinop.Market.Gateway;

/// <summary>Registers the ProviderGateway feature's services and endpoints.</summary>
public static class ProviderGatewaySetup
{
    public static IServiceCollection AddProviderGateway(this IServiceCollection services)
    {
        services.AddSingleton(sp => Timings(sp.GetRequiredService<MarketOptions>()));
        services.AddSingleton<ProviderDirectory>();
        services.TryAddSingleton<IRoutableProviders, LocalProviders>();
        services.AddSingleton<ProviderHandshake>();
        services.AddSingleton<ProviderLiveness>();
        services.AddHostedService(sp => sp.GetRequiredService<ProviderLiveness>());
        services.AddSingleton<ProviderGateway>();
        services.AddHostedService(sp => sp.GetRequiredService<ProviderGateway>());
        return services;
    }

    public static IEndpointRouteBuilder MapProviderGateway(this IEndpointRouteBuilder endpoints)
    {
        endpoints.Map("/provider/connect", (HttpContext context, ProviderGateway gateway) => gateway.HandleAsync(context));
        endpoints.MapGet("/api/providers", ProvidersApi.ListAsync);
        return endpoints;
    }

    private static HeartbeatTimings Timings(MarketOptions o) => new(
        o.HeartbeatMinTtl,
        o.HeartbeatMaxTtl,
        o.MaxHeartbeatsPerSecond,
        o.HeartbeatGrace,
        o.FailoverTtl);
}
