using Coinop.Market.Gateway;
using Coinop.Storage.Work;
using Coinop.Storage.Workloads;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Coinop.Market.Workloads;

/// <summary>Registers the Workloads feature's services and endpoints.</summary>
public static class WorkloadsSetup
{
    public static IServiceCollection AddWorkloads(this IServiceCollection services)
    {
        services.AddMetrics();
        services.TryAddSingleton<IWorkStore, WorkStore>();
        services.AddSingleton<IWorkloadStore, WorkloadStore>();
        services.AddSingleton<IWorkloadUsageStore, WorkloadUsageStore>();
        services.AddSingleton<IWorkloadCheckpointStore, WorkloadCheckpointStore>();
        services.AddSingleton<IWorkloadReceiptStore, WorkloadReceiptStore>();
        services.AddSingleton<IWorkloadLogStore>(sp => new WorkloadLogStore(sp.GetRequiredService<Coinop.Storage.Database>()));
        // Free unless the payments feature registered billing before this runs (it does, for a market without --free).
        services.TryAddSingleton<IWorkloadBilling, FreeWorkloadBilling>();
        services.AddSingleton<WorkloadLogFeed>();
        services.AddHostedService(sp => sp.GetRequiredService<WorkloadLogFeed>());
        services.AddSingleton<WorkloadSupervisor>();
        services.AddHostedService(sp => sp.GetRequiredService<WorkloadSupervisor>());
        services.AddSingleton<WorkloadTraffic>();
        services.AddSingleton<IProviderWorkloads>(sp => sp.GetRequiredService<WorkloadTraffic>());
        return services;
    }

    public static IEndpointRouteBuilder MapWorkloads(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapPost("/api/workloads", WorkloadsApi.SubmitAsync);
        endpoints.MapGet("/api/workloads", WorkloadsApi.ListAsync);
        endpoints.MapGet("/api/workloads/{id}", WorkloadsApi.GetAsync);
        endpoints.MapDelete("/api/workloads/{id}", WorkloadsApi.CancelAsync);
        endpoints.MapPost("/api/workloads/{id}/topup", WorkloadsApi.TopUpAsync);
        endpoints.MapGet("/api/workloads/{id}/refund", WorkloadsApi.RefundAsync);
        endpoints.MapGet("/api/workloads/{id}/logs", WorkloadLogsApi.LogsAsync);
        endpoints.MapGet("/api/workloads/{id}/access", WorkloadsApi.AccessAsync);
        return endpoints;
    }
}
