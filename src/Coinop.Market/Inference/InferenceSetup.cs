using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Coinop.Market.Inference;

/// <summary>Registers the Inference feature's services and endpoints.</summary>
public static class InferenceSetup
{
    public static IServiceCollection AddInference(this IServiceCollection services) => services;

    public static IEndpointRouteBuilder MapInference(this IEndpointRouteBuilder endpoints) => endpoints;
}
