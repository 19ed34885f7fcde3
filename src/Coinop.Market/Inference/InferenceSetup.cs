using Coinop.Market.Hosting;
using Coinop.Market.Inference.Anthropic;
using Coinop.Market.Inference.Responses;
using Coinop.Storage.Jobs;
using Coinop.Storage.Responses;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Coinop.Market.Inference;

/// <summary>Registers the Inference feature's services and endpoints.</summary>
public static class InferenceSetup
{
    public static IServiceCollection AddInference(this IServiceCollection services)
    {
        services.AddOptions<InferenceOptions>().ValidateDataAnnotations().ValidateOnStart();
        services.AddMetrics();
        services.AddSingleton<InferenceMetrics>();
        services.AddSingleton(sp => sp.GetRequiredService<Hosting.MarketOptions>().OfferLimits(sp.GetRequiredService<IOptions<InferenceOptions>>().Value.DefaultOutputReservation));
        services.AddSingleton<OfferIndex>();
        services.AddSingleton<ProviderRouter>();
        services.AddSingleton<CapacityQueue>();
        services.AddSingleton<JobAdmission>();
        services.AddSingleton<Gateway.IModelQueueDepths>(sp => sp.GetRequiredService<CapacityQueue>());
        services.AddHostedService<CapacitySweep>();
        services.AddSingleton<AttemptRunner>();
        services.AddSingleton<InferencePipeline>();
        services.AddSingleton<IJobRecordStore, JobRecordStore>();
        services.AddOptions<ResponsesOptions>().Configure<MarketOptions>((o, market) => o.Retention = market.ResponseRetention);
        services.AddSingleton<IResponseStore, ResponseStore>();
        services.AddSingleton<ResponsesService>();
        services.AddHostedService<ResponsePruner>();
        services.AddSingleton<JobRecordWriter>();
        services.AddHostedService(sp => sp.GetRequiredService<JobRecordWriter>());
        // Free (what a --free market uses); the payments feature replaces it with paid billing otherwise.
        services.TryAddSingleton<IInferenceBilling, FreeInferenceBilling>();
        services.AddSingleton<IStartupFilter, ErrorHandlingStartupFilter>();
        return services;
    }

    public static IEndpointRouteBuilder MapInference(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/v1/models", ModelsApi.ListAsync);
        Map(endpoints, "/v1/chat/completions", InferenceRoute.ChatCompletions);
        Map(endpoints, "/v1/completions", InferenceRoute.Completions);
        Map(endpoints, "/v1/embeddings", InferenceRoute.Embeddings);
        Map(endpoints, "/v1/messages", InferenceRoute.Messages);
        endpoints.MapPost("/v1/messages/count_tokens", (HttpContext http, MarketOptions market) => CountTokensApi.CountAsync(http, market));
        Map(endpoints, "/v1/responses", InferenceRoute.Responses);
        endpoints.MapGet("/v1/responses/{id}", (HttpContext http, string id, ResponsesService responses) => responses.GetAsync(http, id));
        return endpoints;
    }

    private static void Map(IEndpointRouteBuilder endpoints, string pattern, InferenceRoute route) =>
        endpoints.MapPost(pattern, (HttpContext http, InferencePipeline pipeline) => pipeline.ServeAsync(http, route));
}
