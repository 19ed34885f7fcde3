using Coinop.Market.Inference;
using Coinop.Market.Payments;
using Coinop.Market.Workloads;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Metrics;

namespace Coinop.Market.Hosting;

/// <summary>
/// The market's metrics (requests, errors, time to first byte, payments, workload heartbeats, plus ASP.NET Core's and
/// the runtime's own) through OpenTelemetry, scraped by Prometheus at <c>GET /metrics</c>.
/// </summary>
public static class TelemetrySetup
{
    public static IServiceCollection AddMarketTelemetry(this IServiceCollection services)
    {
        services.AddOpenTelemetry().WithMetrics(metrics => metrics
            .AddMeter(InferenceMetrics.MeterName, PaymentsMetrics.MeterName, WorkloadSupervisor.MeterName, Cluster.ClusterMetrics.MeterName)
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
