using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Metrics;

namespace Coinop.Market.Hosting;

/// <summary>
/// The market's metrics (requests, errors, time to first byte, payments, the mint, workload heartbeats, the cluster, plus ASP.NET Core's and
/// the runtime's own) through OpenTelemetry, scraped by Prometheus at <c>GET /metrics</c>.
/// </summary>
public static class TelemetrySetup
{
    public static IServiceCollection AddMarketTelemetry(this IServiceCollection services)
    {
        services.AddOpenTelemetry().WithMetrics(metrics => metrics
            // Every meter of the market's own (Coinop.Market, Coinop.Mint, Coinop.Payments, ...): a new feature's meter is
            // exported without being listed here (MetricsTests checks each one shows up).
            .AddMeter("Coinop.*")
            .AddMeter("Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.Server.Kestrel", "System.Runtime")
            .AddPrometheusExporter());
        return services;
    }

    public static IEndpointRouteBuilder MapMarketTelemetry(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapPrometheusScrapingEndpoint("/metrics");
        return endpoints;
    }
}
