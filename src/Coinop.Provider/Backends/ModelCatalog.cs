using Coinop.Core.Pricing;
using Coinop.Core.Protocol;

namespace Coinop.Provider.Backends;

/// <summary>
/// What the provider offers after a discovery pass: one offer per model, from the highest-priority backend that
/// serves it (vLLM, llama.cpp, LM Studio, Ollama, then generic OpenAI-compatible), priced from the operator's
/// prices or the default.
/// </summary>
public sealed class ModelCatalog
{
    private readonly Dictionary<string, BackendEndpoint> _routes;

    private ModelCatalog(IReadOnlyList<ModelOffer> offers, Dictionary<string, BackendEndpoint> routes, IReadOnlyList<BackendStatus> backends)
    {
        Offers = offers;
        _routes = routes;
        Backends = backends;
    }

    public static ModelCatalog Empty { get; } = new([], [], []);

    /// <summary>The offers sent in capabilities, ordered by model name.</summary>
    public IReadOnlyList<ModelOffer> Offers { get; }

    /// <summary>Every backend probed, healthy or not.</summary>
    public IReadOnlyList<BackendStatus> Backends { get; }

    public bool TryRoute(string model, out BackendEndpoint backend) => _routes.TryGetValue(model, out backend!);

    public static ModelCatalog Build(IReadOnlyList<BackendStatus> backends, IReadOnlyDictionary<string, ModelPrice> prices, ModelPrice defaultPrice, int maxConcurrent)
    {
        var routes = new Dictionary<string, BackendEndpoint>(StringComparer.Ordinal);
        var offers = new List<ModelOffer>();
        var byPriority = backends.Select((status, order) => (status, order))
            .Where(b => b.status.Healthy)
            .OrderBy(b => b.status.Backend.Kind.Priority())
            .ThenBy(b => b.order);
        foreach (var (status, _) in byPriority)
        {
            foreach (var model in status.Models)
            {
                if (!routes.TryAdd(model.Model, status.Backend))
                {
                    continue;
                }

                var price = prices.TryGetValue(model.Model, out var p) ? p : defaultPrice;
                offers.Add(new ModelOffer(
                    model.Model,
                    model.Simulated ? "simulator" : status.Backend.Kind.Name(),
                    price.InputMsatPerMtok,
                    price.OutputMsatPerMtok,
                    model.ContextWindow,
                    maxConcurrent,
                    AnthropicNative: false,
                    Embeddings: model.Embeddings,
                    Vision: model.Vision));
            }
        }

        offers.Sort((a, b) => string.CompareOrdinal(a.Model, b.Model));
        return new ModelCatalog(offers, routes, backends);
    }

    /// <summary>True when the market would see the same capabilities (routing to another URL of the same kind does not matter to it).</summary>
    public bool SameOffersAs(ModelCatalog other) => Offers.SequenceEqual(other.Offers);
}
