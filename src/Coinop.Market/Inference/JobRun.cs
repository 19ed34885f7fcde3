using Coinop.Core.Pricing;
using Microsoft.AspNetCore.Http;

namespace Coinop.Market.Inference;

/// <summary>
/// One admitted request's job while it runs: what <see cref="InferencePipeline"/> hands each attempt the
/// <see cref="AttemptRunner"/> makes, and what the attempts leave behind for the pipeline to charge when the job fails.
/// </summary>
internal sealed record JobRun(
    HttpContext Http,
    InferenceRequest Request,
    InferenceJob Job,
    BillingReservation Reservation,
    ConsumerOutput Output,
    CancellationTokenSource Deadline,
    DateTimeOffset DeadlineAt,
    string Consumer,
    CancellationToken Cancellation)
{
    /// <summary>Output tokens of the stream flushed to the consumer so far; null until a first flush went out.</summary>
    public long? DeliveredOutputTokens { get; set; }

    /// <summary>Who produced the output that reached the consumer, at what price; null while none did.</summary>
    public (string ProviderId, ModelPrice Price, long LinkEpoch)? DeliveredBy { get; set; }
}

/// <summary>How an attempt ended (<c>default</c> is <see cref="Completed"/>).</summary>
internal enum AttemptOutcome
{
    Completed,
    Retry,
    Final,
    Cancelled,
}

internal readonly record struct AttemptResult(AttemptOutcome Outcome, ApiError? Error, string? CancelReason);
