using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Coinop.Market.Mint;

/// <summary>Registers the Mint feature's services and endpoints.</summary>
public static class MintSetup
{
    public static IServiceCollection AddMint(this IServiceCollection services) => services;

    public static IEndpointRouteBuilder MapMint(this IEndpointRouteBuilder endpoints) => endpoints;
}
