using System.Buffers;
using System.Collections.Frozen;
using System.Text.Json;
using Coinop.Market.Gateway;

namespace Coinop.Market.Inference;

/// <summary>
/// The providers that offer each model, built from the routing snapshot and kept until the snapshot is replaced or an
/// offer changes anywhere (<see cref="OfferChanges"/>), so a routing decision over thousands of linked providers reads
/// only the model's own list, and <c>/v1/models</c> is a cached body. Rebuilt lazily by whoever asks first (O(n), rare:
/// providers connect, disconnect and rediscover seldom); racing rebuilds produce equal indexes.
/// </summary>
public sealed class OfferIndex(IRoutableProviders providers)
{
    private Snapshot _current = new([], -1, FrozenDictionary<string, ModelProviders>.Empty);

    /// <summary>The index for the providers and offers as they are now.</summary>
    public Snapshot Current
    {
        get
        {
            var current = Volatile.Read(ref _current);
            var all = providers.Snapshot;
            var version = OfferChanges.Version;
            if (ReferenceEquals(current.Providers, all) && current.Version == version)
            {
                return current;
            }

            var built = Build(all, version);
            Volatile.Write(ref _current, built);
            return built;
        }
    }

    private static Snapshot Build(IRoutableProvider[] all, long version)
    {
        var byModel = new Dictionary<string, List<IRoutableProvider>>(StringComparer.Ordinal);
        var cheapest = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var provider in all)
        {
            if (provider.MaxConcurrent == 0 || !provider.Accepting)
            {
                continue; // no capabilities yet, or draining: routing would not take it (and /v1/models must not list it)
            }

            foreach (var offer in provider.Offers)
            {
                if (!byModel.TryGetValue(offer.Model, out var list))
                {
                    byModel[offer.Model] = list = [];
                    cheapest[offer.Model] = double.MaxValue;
                }

                list.Add(provider);
                cheapest[offer.Model] = Math.Min(cheapest[offer.Model], offer.Price.BlendedMsatPerMtok);
            }
        }

        return new Snapshot(all, version, byModel.ToFrozenDictionary(
            kv => kv.Key, kv => new ModelProviders([.. kv.Value], cheapest[kv.Key]), StringComparer.Ordinal));
    }

    /// <summary>The providers of one model, and the lowest blended price among their offers when the index was built.</summary>
    public sealed record ModelProviders(IRoutableProvider[] Providers, double CheapestBlendedMsatPerMtok);

    /// <summary>One immutable index: the routing snapshot it was built from, per-model provider lists, the <c>/v1/models</c> body.</summary>
    public sealed class Snapshot(IRoutableProvider[] providers, long version, FrozenDictionary<string, ModelProviders> byModel)
    {
        private byte[]? _modelsBody;
        private FrozenDictionary<string, IRoutableProvider>? _byId;

        public IRoutableProvider[] Providers { get; } = providers;

        public long Version { get; } = version;

        public FrozenDictionary<string, ModelProviders> ByModel { get; } = byModel;

        /// <summary>Every provider of the snapshot by id (the first one when a provider shows up twice), built on first use.</summary>
        public FrozenDictionary<string, IRoutableProvider> ById => _byId ??= Providers.DistinctBy(p => p.ProviderId, StringComparer.Ordinal)
            .ToFrozenDictionary(p => p.ProviderId, StringComparer.Ordinal);

        public IRoutableProvider[] Of(string model) => ByModel.TryGetValue(model, out var m) ? m.Providers : [];

        /// <summary>The body of <c>GET /v1/models</c> (OpenAI's list shape, models in ordinal order), built once per index.</summary>
        public byte[] ModelsBody => _modelsBody ??= WriteModels([.. ByModel.Keys.Order(StringComparer.Ordinal)]);

        private static byte[] WriteModels(string[] models)
        {
            var body = new ArrayBufferWriter<byte>(256 + models.Length * 96);
            using (var json = new Utf8JsonWriter(body))
            {
                json.WriteStartObject();
                json.WriteString("object", "list");
                json.WriteStartArray("data");
                foreach (var model in models)
                {
                    json.WriteStartObject();
                    json.WriteString("id", model);
                    json.WriteString("object", "model");
                    json.WriteNumber("created", 0);
                    json.WriteString("owned_by", "coinop");
                    json.WriteEndObject();
                }

                json.WriteEndArray();
                json.WriteEndObject();
            }

            return body.WrittenSpan.ToArray();
        }
    }
}
