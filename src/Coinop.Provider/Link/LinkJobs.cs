using System.Collections.Concurrent;
using Coinop.Core.Protocol;
using Coinop.Provider.Backends;
using Coinop.Provider.Hosting;
using Coinop.Provider.Jobs;
using Coinop.Runtime.Links;

namespace Coinop.Provider.Link;

/// <summary>
/// The jobs one market link has running: admits a job the market sends (or refuses it with a job_error), routes the
/// market's window grants and cancels to it, and frees its concurrency slot when it ends.
/// </summary>
internal sealed class LinkJobs(AgentContext agent, MarketSocket socket, CancellationToken end)
{
    private readonly ConcurrentDictionary<Guid, JobRun> _jobs = new();

    // Made once per link, not per job.
    private readonly Func<OutgoingFrame, ValueTask<bool>> _send = frame => socket.SendAsync(frame);
    private readonly Func<OutgoingFrame, OutgoingFrame, ValueTask<bool>> _sendTogether = (first, then) => socket.SendAsync(first, then);
    private Action<JobRun>? _ended;
    private BackendEndpoint? _lastBackend;
    private string? _lastPath;
    private Uri? _lastUrl;

    /// <summary>Admits <paramref name="job"/> and starts it, or tells the market why not.</summary>
    public async Task StartAsync(JobOrder job)
    {
        string? refusal = null;
        string code = JobErrorCodes.OutOfCapacity;
        BackendEndpoint? backend = null;
        if (agent.Draining)
        {
            refusal = "the provider is draining";
        }
        else if (!IsSafePath(job.Path))
        {
            (code, refusal) = (JobErrorCodes.InvalidRequest, $"'{job.Path}' is not an API path this provider relays");
        }
        else if (!agent.Discovery.Current.TryRoute(job.Model, out backend))
        {
            (code, refusal) = (JobErrorCodes.ModelNotLoaded, $"no backend of this provider serves '{job.Model}'");
        }
        else if (!agent.TryTakeSlot())
        {
            refusal = agent.Draining ? "the provider is draining" : $"the provider is at its limit of {agent.Options.MaxConcurrent} concurrent jobs";
        }

        if (refusal is not null)
        {
            ProviderLog.JobRefused(agent.Logger, job.JobId, job.Model, code, refusal);
            await socket.SendAsync(OutgoingFrame.Text(ProtocolJson.Serialize(new JobError(job.JobId, job.Fence, code, refusal, false))));
            return;
        }

        var run = new JobRun(job, backend!, UrlFor(backend!, job.Path), agent, _send, _sendTogether, _ended ??= Ended, end);

        // A job id that is already running came back with a new fence: the old attempt is stale.
        if (_jobs.TryGetValue(job.JobId, out var stale))
        {
            stale.Cancel();
        }

        _jobs[job.JobId] = run;
        run.Start();
    }

    /// <summary>Grants a running job more window; false when no such job runs here.</summary>
    public bool Grant(JobWindow window)
    {
        if (!_jobs.TryGetValue(window.JobId, out var run))
        {
            return false;
        }

        run.Window.Grant(window.Increment);
        return true;
    }

    /// <summary>Cancels a running job; false when no such job runs here.</summary>
    public bool Cancel(Guid jobId)
    {
        if (!_jobs.TryGetValue(jobId, out var run))
        {
            return false;
        }

        run.Cancel();
        return true;
    }

    /// <summary>Cancels every job and waits for them all (the link ended).</summary>
    public Task CancelAllAsync()
    {
        foreach (var job in _jobs.Values)
        {
            job.Cancel();
        }

        return Task.WhenAll(_jobs.Values.Select(j => j.Completion));
    }

    /// <summary>Stops every job still running, each with a job_error carrying <paramref name="reason"/>, and waits for them.</summary>
    public async Task<int> AbandonAsync(string reason)
    {
        var jobs = _jobs.Values.ToList();
        foreach (var job in jobs)
        {
            job.Abort(reason);
        }

        await Task.WhenAll(jobs.Select(j => j.Completion));
        return jobs.Count;
    }

    /// <summary>A job's last step: frees its slot (and only its own entry: a stale attempt's successor keeps its place).</summary>
    private void Ended(JobRun run)
    {
        _jobs.TryRemove(new KeyValuePair<Guid, JobRun>(run.JobId, run));
        agent.ReleaseSlot();
    }

    /// <summary>
    /// The backend URL of a job's path. A link's jobs nearly all go to one backend and path: the last URL is kept
    /// rather than parsed again per job. Only the link's reader starts jobs, so it needs no lock.
    /// </summary>
    private Uri UrlFor(BackendEndpoint backend, string path)
    {
        if (!ReferenceEquals(backend, _lastBackend) || path != _lastPath)
        {
            (_lastBackend, _lastPath, _lastUrl) = (backend, path, backend.Resolve("v1/" + path));
        }

        return _lastUrl!;
    }

    private static bool IsSafePath(string path) =>
        path.Length is > 0 and < 128 && !path.Contains("..", StringComparison.Ordinal) && path[0] != '/'
        && path.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '/' or '_' or '-' or '.');
}
