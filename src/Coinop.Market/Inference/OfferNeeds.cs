using Coinop.Core.Protocol;

namespace Coinop.Market.Inference;

/// <summary>
/// What a request needs of a provider's offer beyond serving its model: the one place every such rule lives, so the
/// router skips offers that cannot serve the request and the pipeline can say which need no offer meets.
/// </summary>
/// <param name="Embeddings">An embeddings request: only embedding offers.</param>
/// <param name="AnthropicNative">A Messages request the market cannot translate: only offers with a native Anthropic route.</param>
public readonly record struct OfferNeeds(bool Embeddings, bool AnthropicNative)
{
    /// <summary>True when <paramref name="offer"/> can serve a request with these needs.</summary>
    public bool MetBy(ModelOffer offer) => (!Embeddings || offer.Embeddings) && (!AnthropicNative || offer.AnthropicNative);
}
