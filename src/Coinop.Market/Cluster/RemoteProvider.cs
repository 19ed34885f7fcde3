using System.Collections.Concurrent;
using System.Collections.Frozen;
using Coinop.Core.Cluster;
using Coinop.Core.Protocol;
using Coinop.Core.Routing;
using Coinop.Market.Gateway;
using Coinop.Storage.Cluster;

namespace Coinop.Market.Cluster;

/// <summary>
/// A provider linked to another node of the market, as this node routes to it: its offers and routing figures as the
/// holding node published them, plus what this node knows better (the jobs it forwarded there and still runs, failures it
/// saw). A job sent to it is forwarded to the holding node (<see cref="ForwardClient"/>), which runs it on its own session
/// of the provider and streams the output back; to the pipeline it behaves like a local session.
/// </summary>
public sealed class RemoteProvider : IRoutableProvider
{
    private readonly ForwardClient _client;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<Guid, ForwardedAttempt> _attempts = new();
    private readonly Lock _routingGate = new();
    private readonly Parking _parking;
    private volatile State _state;
    private int _localInFlight;
    private volatile string? _abandoned;

    internal RemoteProvider(ProviderLink link, string name, MarketNode holder, ForwardClient client, TimeProvider time)
    {
        ProviderId = link.ProviderId;
        LinkEpoch = link.Epoch;
        Name = name;
        Holder = holder;
        _client = client;
        _time = time;
        _parking = new Parking(time);
        _state = new State(null, FrozenDictionary<string, ModelOffer>.Empty, new LinkFigures(false, 0, 0, null, null), 0, link.LinkedAt);
    }

    public string ProviderId { get; }

    public string Name { get; }

    public long LinkEpoch { get; }

    /// <summary>The node holding the provider's link (updated with each refresh of the view).</summary>
    public MarketNode Holder { get; private set; }

    public CapabilitiesMessage? Capabilities => _state.Capabilities;

    public long CapabilitiesVersion => _state.CapabilitiesVersion;

    public LinkFigures Figures => _state.Figures;

    public DateTimeOffset UpdatedAt => _state.UpdatedAt;

    /// <summary>
    /// The link takes jobs, as its holder last published. A holder this node failed to reach a moment ago does not make
    /// its providers unknown (a 404 for a model that is listed): they count as parked until then (<see cref="IsParked"/>).
    /// </summary>
    public bool Accepting => _abandoned is null && _state.Capabilities is not null && _state.Figures.Accepting;

    public int MaxConcurrent => _state.Capabilities?.MaxConcurrent ?? 0;

    /// <summary>The larger of what the holder last published and the jobs this node forwarded there and still runs.</summary>
    public int InFlight => Math.Max(_state.Figures.InFlight, Volatile.Read(ref _localInFlight));

    public bool IsParked
    {
        get
        {
            if ((_state.Figures.ParkedUntil is { } until && _time.GetUtcNow() < until) || _client.IsSuspended(Holder.NodeId))
            {
                return true;
            }

            lock (_routingGate)
            {
                return _parking.IsParked;
            }
        }
    }

    public DateTimeOffset? ParkedUntil
    {
        get
        {
            DateTimeOffset? local;
            lock (_routingGate)
            {
                local = _parking.ParkedUntil;
            }

            var published = _state.Figures.ParkedUntil is { } p && _time.GetUtcNow() < p ? p : (DateTimeOffset?)null;
            return published > local || local is null ? published : local;
        }
    }

    public double LatencyEstimateMs => _state.Figures.LatencyMs > 0 ? _state.Figures.LatencyMs : 100;

    public IReadOnlyCollection<ModelOffer> Offers => _state.Offers.Values;

    public bool TryGetOffer(string model, out ModelOffer offer) => _state.Offers.TryGetValue(model, out offer!);

    public bool TryAcquireSlot()
    {
        while (true)
        {
            var local = Volatile.Read(ref _localInFlight);
            if (Math.Max(local, _state.Figures.InFlight) >= MaxConcurrent)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref _localInFlight, local + 1, local) == local)
            {
                return true;
            }
        }
    }

    public void ReleaseSlot() => Interlocked.Decrement(ref _localInFlight);

    public void RecordSuccess(double timeToFirstByteMs)
    {
        lock (_routingGate)
        {
            _parking.RecordSuccess();
        }
    }

    public bool RecordFailure()
    {
        lock (_routingGate)
        {
            return _parking.RecordFailure();
        }
    }

    public async ValueTask<bool> StartJobAsync(IJobAttemptSink sink, JobMessage job, CancellationToken cancellationToken)
    {
        if (_abandoned is not null)
        {
            return false;
        }

        var attempt = new ForwardedAttempt(sink, job.WindowBytes);
        _attempts[sink.JobId] = attempt;
        ForwardRefusal refusal;
        try
        {
            refusal = await _client.StartAsync(Holder.NodeId, Holder.NodeUrl, ProviderId, LinkEpoch, job, attempt, cancellationToken);
        }
        catch
        {
            Forget(sink, attempt);
            throw;
        }

        if (refusal == ForwardRefusal.None)
        {
            if (_abandoned is { } reason)
            {
                attempt.Lose(reason); // the holder went away while the job was being accepted
            }

            return true;
        }

        if (refusal == ForwardRefusal.LinkMoved)
        {
            // Until the view catches up with where the provider went, nothing more goes this way.
            _abandoned = "the provider's link moved";
        }

        Forget(sink, attempt);
        cancellationToken.ThrowIfCancellationRequested();
        return false;
    }

    public void GrantWindow(IJobAttemptSink sink, int bytes)
    {
        if (_attempts.TryGetValue(sink.JobId, out var attempt))
        {
            attempt.Grant(bytes);
        }
    }

    public void CancelJob(IJobAttemptSink sink, string reason) => EndJob(sink);

    public void EndJob(IJobAttemptSink sink)
    {
        if (_attempts.TryRemove(sink.JobId, out var attempt))
        {
            attempt.Cancel(); // its pump ends and disposes it
        }
    }

    /// <summary>The view's latest word on this link (same provider and epoch).</summary>
    internal void Update(PublishedLink link, CapabilitiesMessage? capabilities, long capabilitiesVersion, MarketNode holder)
    {
        var current = _state;
        var caps = capabilities ?? current.Capabilities;
        var offers = ReferenceEquals(caps, current.Capabilities) ? current.Offers : OffersOf(caps);
        Holder = holder;
        _state = new State(caps, offers, link.Figures, capabilities is null ? current.CapabilitiesVersion : capabilitiesVersion, link.UpdatedAt);
        if (!ReferenceEquals(offers, current.Offers) || link.Figures.Accepting != current.Figures.Accepting)
        {
            Gateway.OfferChanges.Changed(); // routing's per-model index (built from accepting providers) is rebuilt
        }
    }

    /// <summary>The link is gone from this node's view: nothing new is routed here, and with <paramref name="loseJobs"/> (its node died) jobs in flight are lost.</summary>
    internal void Abandon(string reason, bool loseJobs)
    {
        _abandoned ??= reason;
        if (!loseJobs)
        {
            return;
        }

        foreach (var attempt in _attempts.Values)
        {
            attempt.Lose(reason);
        }
    }

    /// <summary>An attempt whose forward never started (no pump owns it).</summary>
    private void Forget(IJobAttemptSink sink, ForwardedAttempt attempt)
    {
        _attempts.TryRemove(new KeyValuePair<Guid, ForwardedAttempt>(sink.JobId, attempt));
        attempt.Dispose();
    }

    private static FrozenDictionary<string, ModelOffer> OffersOf(CapabilitiesMessage? capabilities)
    {
        if (capabilities?.Models is null)
        {
            return FrozenDictionary<string, ModelOffer>.Empty;
        }

        var offers = new Dictionary<string, ModelOffer>(StringComparer.Ordinal);
        foreach (var offer in capabilities.Models)
        {
            if (offer is not null && !string.IsNullOrEmpty(offer.Model))
            {
                offers[offer.Model] = offer;
            }
        }

        return offers.ToFrozenDictionary(StringComparer.Ordinal);
    }

    private sealed record State(
        CapabilitiesMessage? Capabilities,
        FrozenDictionary<string, ModelOffer> Offers,
        LinkFigures Figures,
        long CapabilitiesVersion,
        DateTimeOffset UpdatedAt);
}
