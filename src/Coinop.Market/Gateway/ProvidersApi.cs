using System.Text.Json.Serialization;
using Coinop.Core.Protocol;
using Coinop.Storage.Providers;
using Microsoft.AspNetCore.Http;

namespace Coinop.Market.Gateway;

/// <summary>
/// One provider as <c>GET /api/providers</c> shows it. Prices are sats per million tokens. <c>public_key</c> is its
/// Ed25519 identity key (base64; the id is derived from it), which a consumer checks the workload sealing key against.
/// </summary>
public sealed record ProviderView(
    string Id,
    string Name,
    bool Online,
    IReadOnlyList<ModelView> Models,
    LoadView Load,
    DateTimeOffset? ParkedUntil,
    DateTimeOffset LastSeen,
    string? PublicKey = null,
    WorkloadOfferView? Workloads = null);

/// <summary>
/// What a connected provider offers for workloads: its isolation level (<c>bubblewrap</c>, <c>docker</c> or <c>none</c>),
/// whether copies get internet egress and whether limits are only approximate, capacity, msat rates and its signed
/// sealing key.
/// </summary>
public sealed record WorkloadOfferView(
    string Isolation,
    double CpuCores,
    long MemoryMb,
    long CpuMsatPerCoreSecond,
    long MemoryMsatPerGbSecond,
    string? SealingKey,
    string? SealingKeySignature,
    bool Egress = false,
    bool ApproximateLimits = false);

public sealed record ModelView(string Model, decimal InputPrice, decimal OutputPrice, int? ContextWindow, string Backend);

/// <param name="QueueDepth">The provider's own queue, as it reports it.</param>
/// <param name="Queued">Requests waiting at the market for a slot, per model this provider offers (every provider of the model shares the queue).</param>
public sealed record LoadView(int InFlight, int QueueDepth, double P50LatencyMs, double P95LatencyMs, double TokensPerSecond, double ErrorRate,
    IReadOnlyDictionary<string, int>? Queued = null);

public sealed record GatewayError(string Error);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ProviderView[]))]
[JsonSerializable(typeof(GatewayError))]
public sealed partial class GatewayJsonContext : JsonSerializerContext;

/// <summary>
/// <c>GET /api/providers</c>: every provider the market knows, with live offers and load for linked ones (on this node or,
/// as they published them, on the market's other nodes), online first then by name. With <c>?limit=N</c> (1 to
/// <see cref="MaxLimit"/>) and optionally <c>&amp;cursor=ID</c>: one page of the same array in id order, providers after the
/// cursor, and a <c>Link: &lt;…&gt;; rel="next"</c> header while more may follow — what a market with thousands of providers
/// should be asked for.
/// </summary>
public static class ProvidersApi
{
    public const int MaxLimit = 1000;

    public static async Task<IResult> ListAsync(HttpContext http, IProviderRegistryStore store, IRoutableProviders providers, Inference.OfferIndex index,
        IModelQueueDepths queues, CancellationToken cancellationToken)
    {
        var query = http.Request.Query;
        if (query.ContainsKey("limit") || query.ContainsKey("cursor"))
        {
            return await PageAsync(http, store, index, queues, cancellationToken);
        }

        var known = await store.ListAsync(cancellationToken);
        var keys = known.ToDictionary(r => r.Id, r => Convert.ToBase64String(r.PublicKey), StringComparer.Ordinal);
        var views = new List<ProviderView>(known.Count);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var provider in providers.Snapshot)
        {
            var view = provider switch
            {
                ProviderSession session => View(session, queues),
                Cluster.RemoteProvider remote => View(remote, queues),
                _ => null,
            };
            if (view is not null && seen.Add(provider.ProviderId))
            {
                views.Add(view with { PublicKey = keys.GetValueOrDefault(provider.ProviderId) });
            }
        }

        foreach (var record in known)
        {
            if (!seen.Contains(record.Id))
            {
                views.Add(new ProviderView(record.Id, record.Name, false, [], new LoadView(0, 0, 0, 0, 0, 0), null, record.LastSeenAt, keys[record.Id]));
            }
        }

        views.Sort((a, b) => a.Online != b.Online ? (a.Online ? -1 : 1) : string.CompareOrdinal(a.Name, b.Name));
        return Results.Json(views.ToArray(), GatewayJsonContext.Default.ProviderViewArray);
    }

    private static async Task<IResult> PageAsync(HttpContext http, IProviderRegistryStore store, Inference.OfferIndex index, IModelQueueDepths queues,
        CancellationToken cancellationToken)
    {
        var query = http.Request.Query;
        var limit = 100;
        if (query.TryGetValue("limit", out var limitText)
            && (!int.TryParse(limitText, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out limit) || limit is < 1 or > MaxLimit))
        {
            return Results.Json(new GatewayError($"limit must be a whole number from 1 to {MaxLimit}"), GatewayJsonContext.Default.GatewayError, statusCode: 400);
        }

        string? cursor = null;
        if (query.TryGetValue("cursor", out var cursorText))
        {
            cursor = cursorText.ToString();
            if (cursor.Length is 0 or > 64 || !cursor.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9')))
            {
                return Results.Json(new GatewayError("cursor must be a provider id from a previous page"), GatewayJsonContext.Default.GatewayError, statusCode: 400);
            }
        }

        var records = await store.ListPageAsync(cursor, limit, cancellationToken);
        var linked = index.Current.ById;
        var views = new ProviderView[records.Count];
        for (var i = 0; i < records.Count; i++)
        {
            var record = records[i];
            var view = linked.GetValueOrDefault(record.Id) switch
            {
                ProviderSession session => View(session, queues),
                Cluster.RemoteProvider remote => View(remote, queues),
                _ => null,
            };
            view ??= new ProviderView(record.Id, record.Name, false, [], new LoadView(0, 0, 0, 0, 0, 0), null, record.LastSeenAt);
            views[i] = view with { PublicKey = Convert.ToBase64String(record.PublicKey) };
        }

        if (records.Count == limit)
        {
            http.Response.Headers.Link = $"</api/providers?limit={limit}&cursor={records[^1].Id}>; rel=\"next\"";
        }

        return Results.Json(views, GatewayJsonContext.Default.ProviderViewArray);
    }

    private static ProviderView View(ProviderSession session, IModelQueueDepths queues) =>
        View(session.ProviderId, session.Name, session.Capabilities, session.Offers, session.InFlight, session.Load, session.ParkedUntil, session.LastSeen, queues);

    private static ProviderView View(Cluster.RemoteProvider remote, IModelQueueDepths queues)
    {
        var load = remote.Figures.Load is { } json
            ? System.Text.Json.JsonSerializer.Deserialize(json, Cluster.ClusterJsonContext.Default.LoadFigures) ?? LoadFigures.Idle
            : LoadFigures.Idle;
        return View(remote.ProviderId, remote.Name, remote.Capabilities, remote.Offers, remote.InFlight, load, remote.ParkedUntil, remote.UpdatedAt, queues);
    }

    private static ProviderView View(string id, string name, CapabilitiesMessage? capabilities, IReadOnlyCollection<ModelOffer> offers, int inFlight,
        LoadFigures load, DateTimeOffset? parkedUntil, DateTimeOffset lastSeen, IModelQueueDepths queues)
    {
        var models = new List<ModelView>();
        var queued = new SortedDictionary<string, int>(StringComparer.Ordinal);
        foreach (var offer in offers)
        {
            models.Add(new ModelView(offer.Model, offer.InputMsatPerMtok / 1000m, offer.OutputMsatPerMtok / 1000m, offer.ContextWindow, offer.Backend));
            queued[offer.Model] = queues.DepthOf(offer.Model);
        }

        models.Sort((a, b) => string.CompareOrdinal(a.Model, b.Model));
        return new ProviderView(
            id,
            name,
            capabilities is not null,
            models,
            new LoadView(inFlight, load.QueueDepth, load.P50LatencyMs, load.P95LatencyMs, load.TokensPerSecond, load.ErrorRate, queued),
            parkedUntil,
            lastSeen,
            Workloads: capabilities?.Workloads is { } w
                ? new WorkloadOfferView(w.Isolation, w.CpuCores, w.MemoryMb, w.CpuMsatPerCoreSecond, w.MemoryMsatPerGbSecond, w.SealingKey, w.SealingKeySignature,
                    w.Egress, w.ApproximateLimits)
                : null);
    }
}
