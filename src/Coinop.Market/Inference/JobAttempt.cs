using System.Buffers;
using Coinop.Core.Protocol;
using Coinop.Market.Gateway;

namespace Coinop.Market.Inference;

/// <summary>What a provider session reported for an attempt.</summary>
public enum AttemptEventKind
{
    Chunk,
    Done,
    Error,
    Lost,
}

/// <summary>One event of an attempt; a chunk's bytes are in a pooled array the reader returns.</summary>
public readonly record struct AttemptEvent(AttemptEventKind Kind, byte[]? Buffer, int Length, JobDone? Done, JobError? Error, string? Reason);

/// <summary>
/// One attempt of a job on one provider, under one fence. The session's reader loop pushes frames in; the
/// request that owns the job reads them out. Output is flow-controlled: the provider may have at most the
/// window unacknowledged, and the window is granted back only as bytes are written to the consumer, so the
/// bytes queued here never exceed the window.
/// </summary>
public sealed class JobAttempt : IJobAttemptSink, IDisposable
{
    // Synchronous continuations: the request's task takes a chunk on the session reader's thread, straight from the
    // frame, instead of a thread-pool hop (a wake-up, on an idle pool) per chunk before the consumer sees it. The
    // request yields to the thread pool before anything heavier than relaying (settling, failing over, errors), so the
    // reader is held only for the relay and the flush. See AttemptRunner.RunAsync.
    private readonly AttemptEvents _events = new();
    private readonly int _grantThreshold;
    private long _credit;
    private int _ungranted;

    public JobAttempt(Guid jobId, long fence, IRoutableProvider provider, int windowBytes)
    {
        JobId = jobId;
        Fence = fence;
        Provider = provider;
        _credit = windowBytes;
        // Grants go out in quarters of the window: few control frames, and the provider never idles on a full window.
        _grantThreshold = Math.Max(1, windowBytes / 4);
    }

    public Guid JobId { get; }

    public long Fence { get; }

    public IRoutableProvider Provider { get; }

    /// <summary>The next event of the attempt (one reader, one read at a time); throws when <paramref name="cancellationToken"/> fires first.</summary>
    public ValueTask<AttemptEvent> ReadAsync(CancellationToken cancellationToken) => _events.ReadAsync(cancellationToken);

    public bool OnChunk(ReadOnlySpan<byte> payload)
    {
        if (Interlocked.Add(ref _credit, -payload.Length) < 0)
        {
            return false;
        }

        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(1, payload.Length));
        payload.CopyTo(buffer);
        if (!_events.TryWrite(new AttemptEvent(AttemptEventKind.Chunk, buffer, payload.Length, null, null, null)))
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        return true;
    }

    public void OnDone(JobDone done) => _events.TryWrite(new AttemptEvent(AttemptEventKind.Done, null, 0, done, null, null));

    public void OnError(JobError error) => _events.TryWrite(new AttemptEvent(AttemptEventKind.Error, null, 0, null, error, null));

    public void OnLost(string reason) => _events.TryWrite(new AttemptEvent(AttemptEventKind.Lost, null, 0, null, null, reason));

    /// <summary>The consumer took <paramref name="bytes"/>: grant them back to the provider (batched).</summary>
    public void Consumed(int bytes)
    {
        _ungranted += bytes;
        if (_ungranted < _grantThreshold)
        {
            return;
        }

        var grant = _ungranted;
        _ungranted = 0;
        Interlocked.Add(ref _credit, grant);
        Provider.GrantWindow(this, grant);
    }

    /// <summary>Returns the pooled buffers of events nobody will read.</summary>
    public void Dispose() => _events.Close();
}
