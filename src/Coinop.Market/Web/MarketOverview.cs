using Coinop.Market.Gateway;
using Coinop.Market.Hosting;
using Coinop.Market.Mint;
using Coinop.Market.Mint.Lightning;
using Coinop.Market.Payments;
using Coinop.Storage.Reports;

namespace Coinop.Market.Web;

/// <summary>The market at a glance, as <c>GET /api/market/overview</c> and the public page's live events show it.</summary>
public sealed record OverviewView(
    string MarketId,
    DateTimeOffset At,
    bool Free,
    double FeePercent,
    MintView Mint,
    IReadOnlyList<ModelSummaryView> Models,
    IReadOnlyList<ProviderCardView> Providers,
    ThroughputView Throughput);

/// <summary>The market's mint: its URL, whether its ecash is demo money (a fake Lightning backend), and the mints accepted.</summary>
public sealed record MintView(string Url, bool DemoMoney, string Lightning, IReadOnlyList<string> AcceptedMints);

/// <summary>One model: how many providers online serve it and the range of their prices (sats per million tokens).</summary>
public sealed record ModelSummaryView(
    string Model,
    int Providers,
    decimal InputPriceMin,
    decimal InputPriceMax,
    decimal OutputPriceMin,
    decimal OutputPriceMax,
    int? ContextWindow);

/// <summary>
/// A provider connected to this node. <c>state</c> is <c>online</c>, <c>busy</c> (every slot taken), <c>parked</c>,
/// <c>draining</c> or <c>connecting</c> (no capabilities yet). <c>isolation</c> is how it runs workloads, null when it runs none.
/// Its uptime counts from <c>connected_at</c> (a timestamp, so the overview only changes when something happens).
/// </summary>
public sealed record ProviderCardView(
    string Id,
    string Name,
    string State,
    string? Isolation,
    IReadOnlyList<string> Models,
    int InFlight,
    int MaxConcurrent,
    int QueueDepth,
    double P50LatencyMs,
    double P95LatencyMs,
    double TokensPerSecond,
    double ErrorRate,
    DateTimeOffset ConnectedAt);

/// <summary>Jobs per bucket over the last minutes, for the page's live chart.</summary>
public sealed record ThroughputView(int BucketSeconds, IReadOnlyList<ThroughputPoint> Points);

public sealed record ThroughputPoint(DateTimeOffset At, long Jobs, long OutputTokens);

/// <summary>Builds the overview from this node's connected providers and the store's job records.</summary>
public sealed class MarketOverview(
    ProviderDirectory directory,
    IMarketReportStore reports,
    MarketIdentity identity,
    MarketOptions options,
    CashuMint mint,
    PayerMints payerMints,
    ILightningBackend lightning,
    TimeProvider time)
{
    public static readonly TimeSpan ThroughputWindow = TimeSpan.FromMinutes(5);
    public static readonly TimeSpan ThroughputBucket = TimeSpan.FromSeconds(10);

    /// <summary>How long a computed throughput chart is reused: the public overview may be asked for often, by anyone.</summary>
    public static readonly TimeSpan ThroughputReuse = TimeSpan.FromSeconds(2);

    private volatile CachedThroughput? _throughput;

    public async Task<ThroughputView> ThroughputAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        if (_throughput is { } cached && now - cached.At < ThroughputReuse)
        {
            return cached.View;
        }

        var view = await ComputeThroughputAsync(now, cancellationToken);
        _throughput = new CachedThroughput(now, view);
        return view;
    }

    private async Task<ThroughputView> ComputeThroughputAsync(DateTimeOffset now, CancellationToken cancellationToken)
    {
        var bucketMs = (long)ThroughputBucket.TotalMilliseconds;
        var since = DateTimeOffset.FromUnixTimeMilliseconds((now - ThroughputWindow).ToUnixTimeMilliseconds() / bucketMs * bucketMs);
        var byBucket = new Dictionary<DateTimeOffset, (long Jobs, long Tokens)>();
        foreach (var b in await reports.TrafficAsync(since, ThroughputBucket, cancellationToken))
        {
            var sum = byBucket.GetValueOrDefault(b.At);
            byBucket[b.At] = (sum.Jobs + b.Jobs, sum.Tokens + b.OutputTokens);
        }

        // Every bucket of the window, empty ones too: the chart's x axis is time, not rows.
        var points = new List<ThroughputPoint>();
        for (var at = since; at <= now; at += ThroughputBucket)
        {
            var (jobs, tokens) = byBucket.GetValueOrDefault(at);
            points.Add(new ThroughputPoint(at, jobs, tokens));
        }

        return new ThroughputView((int)ThroughputBucket.TotalSeconds, points);
    }

    private sealed record CachedThroughput(DateTimeOffset At, ThroughputView View);

    public OverviewView Build(ThroughputView throughput)
    {
        var now = time.GetUtcNow();
        var providers = new List<ProviderCardView>();
        var models = new Dictionary<string, List<(decimal In, decimal Out, int? Context)>>(StringComparer.Ordinal);
        foreach (var session in directory.Snapshot)
        {
            var load = session.Load;
            var max = session.Capabilities?.MaxConcurrent ?? 0;
            var state = AdminApi.LinkOf(session);
            var offered = new List<string>();
            foreach (var offer in session.Offers)
            {
                offered.Add(offer.Model);
                if (state is "online" or "busy")
                {
                    if (!models.TryGetValue(offer.Model, out var list))
                    {
                        models[offer.Model] = list = [];
                    }

                    list.Add((offer.InputMsatPerMtok / 1000m, offer.OutputMsatPerMtok / 1000m, offer.ContextWindow));
                }
            }

            offered.Sort(StringComparer.Ordinal);
            providers.Add(new ProviderCardView(session.ProviderId, session.Name, state, session.WorkloadCapacity?.Isolation, offered,
                session.InFlight, max, load.QueueDepth, load.P50LatencyMs, load.P95LatencyMs, load.TokensPerSecond, load.ErrorRate, session.ConnectedAt));
        }

        providers.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name) is var byName and not 0 ? byName : string.CompareOrdinal(a.Id, b.Id));
        var summaries = models
            .Select(m => new ModelSummaryView(m.Key, m.Value.Count, m.Value.Min(p => p.In), m.Value.Max(p => p.In), m.Value.Min(p => p.Out), m.Value.Max(p => p.Out),
                m.Value.Max(p => p.Context)))
            .OrderBy(m => m.Model, StringComparer.Ordinal)
            .ToList();
        return new OverviewView(identity.MarketId, now, options.Free, options.FeePercent,
            new MintView(mint.MintUrl, lightning.IsDemoMoney, lightning.Name, payerMints.AcceptedMints),
            summaries, providers, throughput);
    }
}
