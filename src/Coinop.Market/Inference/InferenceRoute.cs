using Coinop.Core.Protocol;

namespace Coinop.Market.Inference;

/// <summary>The consumer APIs the market serves.</summary>
public enum InferenceRoute
{
    ChatCompletions,
    Completions,
    Embeddings,
    Messages,

    /// <summary>OpenAI's Responses API, served through OpenAI chat on every backend.</summary>
    Responses,
}

public static class InferenceRoutes
{
    /// <summary>The backend path under <c>/v1</c> (the protocol's <c>path</c>).</summary>
    public static string Path(this InferenceRoute route) => route switch
    {
        InferenceRoute.ChatCompletions => "chat/completions",
        InferenceRoute.Completions => "completions",
        InferenceRoute.Embeddings => "embeddings",
        InferenceRoute.Responses => "responses",
        _ => "messages",
    };

    public static WireFormat Format(this InferenceRoute route) =>
        route == InferenceRoute.Messages ? WireFormat.Anthropic : WireFormat.OpenAi;

    public static ErrorShape Shape(this InferenceRoute route) =>
        route == InferenceRoute.Messages ? ErrorShape.Anthropic : ErrorShape.OpenAi;
}
