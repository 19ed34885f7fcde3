using Coinop.Market.Hosting;
using Coinop.Storage.Maintenance;
using Microsoft.Extensions.DependencyInjection;

namespace Coinop.Market.Abuse;

/// <summary>Limits on what strangers can make the market store or do: per-client rate limits and the stale row sweep.</summary>
public static class AbuseSetup
{
    public static IServiceCollection AddAbuseGuards(this IServiceCollection services, MarketOptions options)
    {
        services.AddClientRateLimits(options);
        services.AddSingleton<StaleRowStore>();
        services.AddSingleton<StaleRowSweep>();
        services.AddHostedService(sp => sp.GetRequiredService<StaleRowSweep>());
        return services;
    }
}
