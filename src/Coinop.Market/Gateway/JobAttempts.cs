using System.Collections.Concurrent;
using Coinop.Core.Protocol;

namespace Coinop.Market.Gateway;

/// <summary>
/// The job attempts one provider link is running, by job id. What the provider sends for a job (chunks, done, error)
/// reaches the attempt's <see cref="IJobAttemptSink"/> only under the attempt's fence and at most once: every path
/// that ends an attempt removes it first, so a done racing a cancel or a lost link ends it exactly once.
/// </summary>
internal sealed class JobAttempts(ProviderSocket socket)
{
    private readonly ConcurrentDictionary<Guid, IJobAttemptSink> _jobs = new();

    /// <summary>Registers the attempt and sends its job frame. False when the link is closing.</summary>
    public async ValueTask<bool> StartAsync(IJobAttemptSink sink, JobMessage job, CancellationToken cancellationToken)
    {
        if (socket.Ended)
        {
            return false;
        }

        _jobs[sink.JobId] = sink;
        if (await socket.SendAsync(job, cancellationToken))
        {
            return true;
        }

        End(sink);
        cancellationToken.ThrowIfCancellationRequested();
        return false;
    }

    /// <summary>Forgets the attempt: later frames for it are dropped.</summary>
    public bool End(IJobAttemptSink sink) => _jobs.TryRemove(new KeyValuePair<Guid, IJobAttemptSink>(sink.JobId, sink));

    /// <summary>Stops the job at the provider and forgets it.</summary>
    public void Cancel(IJobAttemptSink sink, string reason)
    {
        if (End(sink))
        {
            socket.TrySend(new JobCancel(sink.JobId, reason));
        }
    }

    /// <summary>Output of a job. An attempt that overruns its window is cancelled at the provider and lost.</summary>
    public void OnChunk(Guid jobId, long fence, ReadOnlySpan<byte> payload)
    {
        // Unknown jobs and stale fences are dropped silently: a provider that lost a job may still be sending.
        if (_jobs.TryGetValue(jobId, out var sink) && sink.Fence == fence && !sink.OnChunk(payload))
        {
            if (End(sink))
            {
                socket.TrySend(new JobCancel(jobId, "window_overrun"));
                sink.OnLost("window_overrun");
            }
        }
    }

    public void OnDone(JobDone done)
    {
        if (_jobs.TryGetValue(done.JobId, out var finished) && finished.Fence == done.Fence && End(finished))
        {
            finished.OnDone(done);
        }
    }

    public void OnError(JobError failed)
    {
        if (_jobs.TryGetValue(failed.JobId, out var sink) && sink.Fence == failed.Fence && End(sink))
        {
            sink.OnError(failed);
        }
    }

    /// <summary>Tells the provider to stop every job; the attempts stay held until the link closes and loses them.</summary>
    public void CancelAll(string reason)
    {
        foreach (var (jobId, _) in _jobs)
        {
            socket.TrySend(new JobCancel(jobId, reason));
        }
    }

    /// <summary>Every attempt still held is told the provider is lost.</summary>
    public void LoseAll(string reason)
    {
        foreach (var (jobId, sink) in _jobs)
        {
            if (_jobs.TryRemove(new KeyValuePair<Guid, IJobAttemptSink>(jobId, sink)))
            {
                sink.OnLost(reason);
            }
        }
    }
}
