using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Coinop.Market.Payments;

/// <summary>Registers the Payments feature's services and endpoints.</summary>
public static class PaymentsSetup
{
    public static IServiceCollection AddPayments(this IServiceCollection services) => services;

    public static IEndpointRouteBuilder MapPayments(this IEndpointRouteBuilder endpoints) => endpoints;
}
