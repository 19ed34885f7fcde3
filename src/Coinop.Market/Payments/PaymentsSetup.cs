using Coinop.Market.Hosting;
using Coinop.Market.Inference;
using Coinop.Market.Workloads;
using Coinop.Storage.Ledger;
using Coinop.Storage.Payments;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Coinop.Market.Payments;

/// <summary>Registers the Payments feature's services and endpoints.</summary>
public static class PaymentsSetup
{
    public static IServiceCollection AddPayments(this IServiceCollection services)
    {
        services.AddOptions<PaymentsOptions>().ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<BalanceReservations>();
        services.AddSingleton<InProcessReservations>();
        services.AddSingleton<ILedgerStore, LedgerStore>();
        services.AddSingleton<IPaymentHoldStore, PaymentHoldStore>();
        services.AddSingleton<IProviderRequestStore, ProviderRequestStore>();
        services.AddSingleton<IForeignPaymentStore, ForeignPaymentStore>();
        services.AddSingleton<IChangeStockStore, ChangeStockStore>();
        services.AddSingleton<NodeIdentity>();
        services.AddSingleton<PaymentsMetrics>();
        services.AddSingleton<ForeignMints>();
        services.AddSingleton<ForeignChange>();
        services.AddSingleton<BackgroundCpu>();
        services.AddSingleton<ChangeStock>();
        services.AddSingleton<PayerMints>();
        services.AddSingleton<HoldChange>();
        services.AddSingleton<Payouts>();
        services.AddSingleton<RequestHolds>();
        services.AddSingleton<Cashier>();
        services.AddSingleton<PaymentIntake>();
        services.AddSingleton<PaidInferenceBilling>();
        services.AddSingleton<IWorkloadAccountStore, WorkloadAccountStore>();
        services.AddSingleton<WorkloadCashier>();
        services.AddSingleton<PaidWorkloadBilling>();
        // A market without --free charges for inference (the inference feature registered free billing as the default).
        services.Replace(ServiceDescriptor.Singleton<IInferenceBilling>(sp => sp.GetRequiredService<MarketOptions>().Free
            ? new FreeInferenceBilling()
            : sp.GetRequiredService<PaidInferenceBilling>()));
        // Workloads too (the workloads feature registers free billing only if none is registered before it).
        services.AddSingleton<IWorkloadBilling>(sp => sp.GetRequiredService<MarketOptions>().Free
            ? new FreeWorkloadBilling()
            : sp.GetRequiredService<PaidWorkloadBilling>());
        services.AddHostedService<PaymentsRecovery>();
        services.AddHostedService(sp => sp.GetRequiredService<ChangeStock>());
        return services;
    }

    public static IEndpointRouteBuilder MapPayments(this IEndpointRouteBuilder endpoints)
    {
        BalanceEndpoints.Map(endpoints);
        LedgerEndpoints.Map(endpoints);
        ProviderMoneyEndpoints.Map(endpoints);
        return endpoints;
    }
}
