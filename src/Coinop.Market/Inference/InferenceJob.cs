using Coinop.Core.Protocol;
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
/// The lifecycle of one inference job, in one place: queued → dispatched(fence) → streaming → completed, failed
/// or cancelled. A job is rerunnable until its first byte reaches the consumer and owner-bound after; every
/// attempt gets a new fence so frames of an earlier attempt are recognised and dropped. Owned by the request
/// that serves the job (one thread at a time), so it takes no lock.
/// </summary>
public sealed class InferenceJob(Guid id, string model, InferenceRoute route, DateTimeOffset createdAt, int maxAttempts)
{
    public Guid Id { get; } = id;

    public string Model { get; } = model;

    public InferenceRoute Route { get; } = route;

    public DateTimeOffset CreatedAt { get; } = createdAt;

    public int MaxAttempts { get; } = maxAttempts;

    public JobState State { get; private set; } = JobState.Queued;

    /// <summary>The fencing token of the current attempt (1, 2, …); 0 before the first dispatch.</summary>
    public long Fence { get; private set; }

    public int Attempts => (int)Fence;

    public string? ProviderId { get; private set; }

    public DateTimeOffset? FirstByteAt { get; private set; }

    public DateTimeOffset? FinishedAt { get; private set; }

    public TokenUsage Usage { get; private set; } = TokenUsage.Zero;

    public string? ErrorCode { get; private set; }

    public long? CostMsat { get; private set; }

    /// <summary>True while the job may still run on another provider: no output has reached the consumer.</summary>
    public bool Rerunnable => State is JobState.Queued or JobState.Dispatched;

    public bool CanRetry => State == JobState.Queued && Attempts < MaxAttempts;

    public bool IsFinished => State is JobState.Completed or JobState.Failed or JobState.Cancelled;

    /// <summary>Starts an attempt on <paramref name="providerId"/>; returns its fence.</summary>
    public long Dispatch(string providerId)
    {
        Require(State == JobState.Queued && Attempts < MaxAttempts, "dispatch");
        ProviderId = providerId;
        State = JobState.Dispatched;
        return ++Fence;
    }

    /// <summary>The first byte of output reached the consumer.</summary>
    public void FirstByteSent(DateTimeOffset now)
    {
        Require(State is JobState.Dispatched or JobState.Streaming, "send output");
        if (State == JobState.Dispatched)
        {
            State = JobState.Streaming;
            FirstByteAt = now;
        }
    }

    /// <summary>The current attempt failed before any output reached the consumer: the job waits for another provider.</summary>
    public void AttemptFailed()
    {
        Require(State == JobState.Dispatched, "fail an attempt");
        State = JobState.Queued;
    }

    public void Complete(TokenUsage usage, long? costMsat, DateTimeOffset now)
    {
        Require(State is JobState.Dispatched or JobState.Streaming, "complete");
        Usage = usage;
        CostMsat = costMsat;
        Finish(JobState.Completed, null, now);
    }

    public void Fail(string errorCode, DateTimeOffset now) => Finish(JobState.Failed, errorCode, now);

    public void Cancel(string reason, DateTimeOffset now) => Finish(JobState.Cancelled, reason, now);

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

    private void Finish(JobState state, string? errorCode, DateTimeOffset now)
    {
        Require(!IsFinished, "finish");
        State = state;
        ErrorCode = errorCode;
        FinishedAt = now;
    }

    private void Require(bool condition, string action)
    {
        if (!condition)
        {
            throw new InvalidOperationException($"Job {Id} cannot {action} in state {State} (attempt {Attempts} of {MaxAttempts}).");
        }
    }
}
