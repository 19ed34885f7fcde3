namespace Coinop.Market.Inference.Responses;

/// <summary>How long the market keeps Responses API answers (for <c>GET /v1/responses/{id}</c> and <c>previous_response_id</c>).</summary>
public sealed class ResponsesOptions
{
    /// <summary>How long a stored response can be read and continued (the market's <c>--response-retention</c>).</summary>
    public TimeSpan Retention { get; set; } = TimeSpan.FromHours(1);

    /// <summary>How often expired responses are deleted.</summary>
    public TimeSpan PruneInterval { get; set; } = TimeSpan.FromMinutes(5);
}
