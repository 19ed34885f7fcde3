using Coinop.Core.Protocol;

namespace Coinop.Market.Gateway;

/// <summary>
/// Where a provider session delivers the frames of one job attempt. Called on the session's reader loop, so
/// implementations must not block: they copy what they need and hand it to the request that owns the job.
/// </summary>
public interface IJobAttemptSink
{
    Guid JobId { get; }

    /// <summary>The fence of this attempt; frames carrying another fence never reach the sink.</summary>
    long Fence { get; }

    /// <summary>Output bytes of the attempt. Returns false when they overrun the granted window (the provider then loses the job).</summary>
    bool OnChunk(ReadOnlySpan<byte> payload);

    void OnDone(JobDone done);

    void OnError(JobError error);

    /// <summary>The provider can no longer serve the attempt (socket closed, replaced, market draining, window overrun).</summary>
    void OnLost(string reason);
}
