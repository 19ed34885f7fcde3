using Coinop.Storage.Reports;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Coinop.Market.Web;

/// <summary>Registers the Web feature: the public page, the balance-key page, the operator's page and their JSON endpoints.</summary>
public static class WebSetup
{
    public static IServiceCollection AddWeb(this IServiceCollection services)
    {
        services.AddSingleton<IMarketReportStore, MarketReportStore>();
        services.AddSingleton<WebAssets>();
        services.AddSingleton<MarketOverview>();
        services.AddSingleton<MarketPulse>();
        services.AddHostedService(sp => sp.GetRequiredService<MarketPulse>());
        return services;
    }

    public static IEndpointRouteBuilder MapWeb(this IEndpointRouteBuilder endpoints)
    {
        WebPages.Map(endpoints);
        AdminApi.Map(endpoints);
        return endpoints;
    }
}
