using Coinop.Core.Protocol;
using Coinop.Core.Work;
using Coinop.Storage.Jobs;

namespace Coinop.Market.Inference;

/// <summary>The states of an inference job.</summary>
public enum JobState
{
    /// <summary>Waiting for a provider (first, or again after an attempt failed before any output reached the consumer).</summary>
    Queued,

    /// <summary>Sent to a provider under the current fence; nothing has reached the consumer yet.</summary>
    Dispatched,

    /// <summary>Output reached the consumer: from here the job is bound to its provider and may not run again.</summary>
    Streaming,

    Completed,
    Failed,
    Cancelled,
}

/// <summary>
/// The lifecycle of one inference job, driven by the durable-work kernel's rules (<see cref="WorkKernel"/>): the job
/// is an owner-bound work item, claimable until it starts; each attempt claims it under a new fence (and a failed
/// attempt's fence is revoked), so frames of an earlier attempt are recognised and dropped; the first byte that
/// reaches the consumer records "started", after which the kernel refuses any further claim; terminals are final.
/// The item lives with the request that serves it (a consumer's connection is bound to one market node), so it is
/// kept in memory and its outcome is recorded by <see cref="JobRecordWriter"/>. Owned by one request at a time: no lock.
/// </summary>
public sealed class InferenceJob
{
    private readonly LeaseTimings _lease;
    private WorkItem _work;
    private LeaseProof? _holder;

    public InferenceJob(Guid id, string model, InferenceRoute route, DateTimeOffset createdAt, int maxAttempts, TimeSpan? timeout = null)
    {
        Id = id;
        Model = model;
        Route = route;
        CreatedAt = createdAt;
        MaxAttempts = maxAttempts;
        var ttl = timeout is { } t && t > TimeSpan.Zero ? t : TimeSpan.FromHours(1);
        _lease = new LeaseTimings(ttl + TimeSpan.FromSeconds(30), (ttl + TimeSpan.FromSeconds(30)) / LeaseTimings.MinTtlToRenewRatio);
        _work = Apply(WorkKernel.Register(new WorkRegistration(id.ToString("N"), WorkKinds.InferenceJob, RecoveryDisposition.OwnerBound), createdAt), "register");
    }

    public Guid Id { get; }

    public string Model { get; }

    public InferenceRoute Route { get; }

    public DateTimeOffset CreatedAt { get; }

    public int MaxAttempts { get; }

    /// <summary>The kernel's view of the job (fence, lease, started marker, terminal).</summary>
    public WorkItem Work => _work;

    public JobState State => _work.Terminal?.Kind switch
    {
        WorkTerminalKind.Completed => JobState.Completed,
        WorkTerminalKind.Failed => JobState.Failed,
        WorkTerminalKind.Cancelled or WorkTerminalKind.Abandoned => JobState.Cancelled,
        _ when _work.Started is not null => JobState.Streaming,
        _ when _work.Lease is not null => JobState.Dispatched,
        _ => JobState.Queued,
    };

    /// <summary>The fencing token of the current (or last) attempt; 0 before the first dispatch.</summary>
    public long Fence => _holder?.Fence ?? _work.Fence;

    public int Attempts { get; private set; }

    public string? ProviderId { get; private set; }

    public DateTimeOffset? FirstByteAt => _work.Started?.At;

    public DateTimeOffset? FinishedAt => _work.Terminal?.At;

    public TokenUsage Usage { get; private set; } = TokenUsage.Zero;

    public string? ErrorCode => _work.Terminal?.Kind == WorkTerminalKind.Completed ? null : _work.Terminal?.Reason;

    public long? CostMsat { get; private set; }

    /// <summary>True while the job may still run on another provider: no output has reached the consumer.</summary>
    public bool Rerunnable => State is JobState.Queued or JobState.Dispatched;

    public bool CanRetry => State == JobState.Queued && Attempts < MaxAttempts;

    /// <summary>Claims the job for an attempt on <paramref name="providerId"/>; returns the attempt's fence.</summary>
    public long Dispatch(string providerId, DateTimeOffset now)
    {
        Require(State == JobState.Queued && Attempts < MaxAttempts, "dispatch");
        var owner = new LeaseOwner(providerId, $"attempt-{Attempts + 1}");
        // The lease lives only in this object, so its token needs to be unique, not unguessable: no random draw (on
        // Linux each Guid.NewGuid is a read of /dev/urandom, a syscall per attempt).
        _work = Apply(WorkKernel.Claim(_work, owner, $"{Id:N}-{Attempts + 1}", _lease, now), "dispatch");
        _holder = _work.Lease!.Proof;
        ProviderId = providerId;
        Attempts++;
        return _holder.Fence;
    }

    /// <summary>The first byte of output reached the consumer: the job is bound to this attempt from now on.</summary>
    public void FirstByteSent(DateTimeOffset now)
    {
        Require(State is JobState.Dispatched or JobState.Streaming && _holder is not null, "send output");
        _work = Apply(WorkKernel.RecordStarted(_work, _holder!, now), "record the first byte");
    }

    /// <summary>The current attempt failed before any output reached the consumer: its fence is revoked and the job waits for another provider.</summary>
    public void AttemptFailed()
    {
        Require(State == JobState.Dispatched && _holder is not null, "fail an attempt");
        _work = Apply(WorkKernel.Revoke(_work, _holder!.Fence, "attempt_failed"), "revoke the attempt");
        _holder = null;
    }

    public void Complete(TokenUsage usage, long? costMsat, DateTimeOffset now)
    {
        Require(State is JobState.Dispatched or JobState.Streaming && _holder is not null, "complete");
        _work = Apply(WorkKernel.Complete(_work, _holder!, WorkTerminalKind.Completed, null, now), "complete");
        Usage = usage;
        CostMsat = costMsat;
    }

    public void Fail(string errorCode, DateTimeOffset now) => Finish(WorkTerminalKind.Failed, errorCode, now);

    public void Cancel(string reason, DateTimeOffset now) => Finish(WorkTerminalKind.Cancelled, reason, now);

    public JobRecord ToRecord() => new(
        Id, Model, Route.Format() == WireFormat.Anthropic ? "anthropic" : "openai", Route.Path(), ProviderId, Attempts,
        CreatedAt, FirstByteAt, FinishedAt ?? CreatedAt, Usage.InputTokens, Usage.OutputTokens,
        State switch
        {
            JobState.Completed => JobOutcome.Completed,
            JobState.Cancelled => JobOutcome.Cancelled,
            _ => JobOutcome.Failed,
        },
        ErrorCode, CostMsat);

    /// <summary>The market's verdict (no lease needed: a deadline or a consumer leaving ends the job whoever holds it).</summary>
    private void Finish(WorkTerminalKind kind, string reason, DateTimeOffset now)
    {
        _work = Apply(WorkKernel.Finish(_work, kind, reason, now), "finish");
        _holder = null;
    }

    private WorkItem Apply(WorkDecision decision, string action) => decision.Accepted
        ? decision.Item!
        : throw new InvalidOperationException($"Job {Id} cannot {action}: {decision.Refusal} (state {State}, attempt {Attempts} of {MaxAttempts}).");

    private void Require(bool condition, string action)
    {
        if (!condition)
        {
            throw new InvalidOperationException($"Job {Id} cannot {action} in state {State} (attempt {Attempts} of {MaxAttempts}).");
        }
    }
}
