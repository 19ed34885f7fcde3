using Coinop.Core.Protocol;

namespace Coinop.Market.Gateway;

/// <summary>
/// A provider the router can send a job to: a <see cref="ProviderSession"/> linked to this node, or a provider linked to
/// another node of the market and reached through it (<c>Cluster.RemoteProvider</c>). Either one takes a slot, runs an
/// attempt into an <see cref="IJobAttemptSink"/> under the same window and cancellation rules, and keeps routing figures.
/// </summary>
public interface IRoutableProvider
{
    string ProviderId { get; }

    string Name { get; }

    /// <summary>
    /// The fencing epoch of the provider's link as recorded in the store when it linked (0 when unknown). Settlement checks
    /// that it is still the current one, so results that arrive over a link another node has taken over are refused.
    /// </summary>
    long LinkEpoch { get; }

    /// <summary>True when new jobs may go to this provider (capabilities known, not draining, not closing).</summary>
    bool Accepting { get; }

    /// <summary>Jobs the provider runs at once (0 before its capabilities arrived).</summary>
    int MaxConcurrent { get; }

    int InFlight { get; }

    bool IsParked { get; }

    double LatencyEstimateMs { get; }

    IReadOnlyCollection<ModelOffer> Offers { get; }

    bool TryGetOffer(string model, out ModelOffer offer);

    /// <summary>Takes one of the provider's concurrency slots; false when it is full.</summary>
    bool TryAcquireSlot();

    void ReleaseSlot();

    void RecordSuccess(double timeToFirstByteMs);

    /// <returns>True when this failure parked the provider.</returns>
    bool RecordFailure();

    /// <summary>Registers the attempt and sends its job. False when the provider cannot take it (closing, moved, gone).</summary>
    ValueTask<bool> StartJobAsync(IJobAttemptSink sink, JobMessage job, CancellationToken cancellationToken);

    /// <summary>The consumer took <paramref name="bytes"/> of the attempt's output: the provider may send that much more.</summary>
    void GrantWindow(IJobAttemptSink sink, int bytes);

    /// <summary>Stops the job at the provider and forgets it.</summary>
    void CancelJob(IJobAttemptSink sink, string reason);

    /// <summary>Forgets the attempt: later frames for it are dropped.</summary>
    void EndJob(IJobAttemptSink sink);
}

/// <summary>Every provider jobs can be routed to now: this node's sessions and, with several nodes, those linked elsewhere.</summary>
public interface IRoutableProviders
{
    /// <summary>A snapshot, never mutated (replaced as a whole when providers come and go).</summary>
    IRoutableProvider[] Snapshot { get; }

    /// <summary>
    /// Waits until <see cref="Snapshot"/> reflects what was true when the call was made (providers linked elsewhere are
    /// read periodically). False, at once, when the snapshot is never behind.
    /// </summary>
    ValueTask<bool> CatchUpAsync(CancellationToken cancellationToken) => ValueTask.FromResult(false);
}

/// <summary>The providers linked to this node only.</summary>
public sealed class LocalProviders(ProviderDirectory directory) : IRoutableProviders
{
    public IRoutableProvider[] Snapshot => directory.Snapshot;
}
