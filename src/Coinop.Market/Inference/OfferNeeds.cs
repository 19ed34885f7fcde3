using System.Text.Json;
using Coinop.Core.Protocol;

namespace Coinop.Market.Inference;

/// <summary>
/// What a request needs of a provider's offer beyond serving its model: the one place every such rule lives, so the
/// router skips offers that cannot serve the request and the pipeline can say which need no offer meets. A new need
/// (a feature of the request, a flag of the offer) is one more field here, read in <see cref="For"/> and checked in
/// <see cref="Unmet"/>.
/// </summary>
/// <param name="Embeddings">An embeddings request: only embedding offers.</param>
/// <param name="AnthropicNative">A Messages request the market cannot translate: only offers with a native Anthropic route.</param>
/// <param name="Tools">The request offers the model tools: offers that declare no tool calling are skipped.</param>
/// <param name="Images">The request carries images: only offers that declare vision.</param>
/// <param name="ContextTokens">
/// What must fit the offer's declared context window: the input estimated at a token per
/// <see cref="ContextBytesPerToken"/> bytes of body (lenient, so a request that fits is not refused) plus the output limit.
/// 0 when the request names no output limit and the input alone is checked.
/// </param>
public readonly record struct OfferNeeds(bool Embeddings, bool AnthropicNative, bool Tools = false, long ContextTokens = 0, bool Images = false)
{
    /// <summary>Bytes of request body counted as one token when checking a context window (JSON syntax is no prompt).</summary>
    public const int ContextBytesPerToken = 4;

    /// <summary>What <paramref name="request"/> needs.</summary>
    public static OfferNeeds For(InferenceRequest request) => new(
        request.Route == InferenceRoute.Embeddings,
        AnthropicNative: request.Route == InferenceRoute.Messages && !request.Translatable,
        Tools: HasTools(request.Root),
        ContextTokens: (request.BodyLength + (request.Turn?.History.Length ?? 0)) / ContextBytesPerToken
            + (request.Route == InferenceRoute.Embeddings ? 0 : request.MaxTokens ?? 0),
        Images: request.HasImages);

    /// <summary>True when <paramref name="offer"/> can serve a request with these needs.</summary>
    public bool MetBy(ModelOffer offer) => Unmet(offer) is null;

    /// <summary>The first need <paramref name="offer"/> does not meet, in a consumer's words; null when it meets them all.</summary>
    public string? Unmet(ModelOffer offer) =>
        Embeddings && !offer.Embeddings ? "embeddings"
        : AnthropicNative && !offer.AnthropicNative ? "content blocks that need the Anthropic API natively"
        : Tools && offer.Tools == false ? "tools"
        : Images && !offer.Vision ? "images (no offer of it declares vision; send text only or use a vision model)"
        : offer.ContextWindow is { } window && window > 0 && ContextTokens > window ? $"a context of about {ContextTokens} tokens (input and output limit)"
        : null;

    private static bool HasTools(JsonElement root) =>
        root.ValueKind == JsonValueKind.Object
        && ((root.TryGetProperty("tools", out var tools) && tools.ValueKind == JsonValueKind.Array && tools.GetArrayLength() > 0)
            || (root.TryGetProperty("functions", out var functions) && functions.ValueKind == JsonValueKind.Array && functions.GetArrayLength() > 0));
}
