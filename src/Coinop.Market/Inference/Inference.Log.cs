using Microsoft.Extensions.Logging;

namespace Coinop.Market.Inference;

/// <summary>Source-generated log messages of inference.</summary>
internal static partial class InferenceLog
{
    [LoggerMessage(EventId = 2001, Level = LogLevel.Error, Message = "Unhandled error on {Method} {Path}")]
    public static partial void Unhandled(ILogger logger, string method, string path, Exception exception);

    [LoggerMessage(EventId = 2002, Level = LogLevel.Information, Message = "Job {JobId} attempt {Fence} on {ProviderId} failed before output ({Reason}); retrying")]
    public static partial void Retrying(ILogger logger, Guid jobId, long fence, string providerId, string reason);

    [LoggerMessage(EventId = 2003, Level = LogLevel.Warning, Message = "Job {JobId} on {ProviderId} failed after output reached the consumer: {Reason}")]
    public static partial void FailedAfterOutput(ILogger logger, Guid jobId, string providerId, string reason);

    [LoggerMessage(EventId = 2004, Level = LogLevel.Warning, Message = "Provider {ProviderId} parked after repeated failures")]
    public static partial void Parked(ILogger logger, string providerId);

    [LoggerMessage(EventId = 2005, Level = LogLevel.Warning, Message = "Job record queue full: record of job {JobId} dropped")]
    public static partial void RecordDropped(ILogger logger, Guid jobId);

    [LoggerMessage(EventId = 2006, Level = LogLevel.Error, Message = "Writing {Count} job records failed")]
    public static partial void RecordsFailed(ILogger logger, int count, Exception exception);

    [LoggerMessage(EventId = 2007, Level = LogLevel.Error, Message = "Billing failed for job {JobId}")]
    public static partial void BillingFailed(ILogger logger, Guid jobId, Exception exception);

    [LoggerMessage(EventId = 2008, Level = LogLevel.Warning,
        Message = "Job {JobId} on {ProviderId}: usage reported ({ClaimedInput} in, {ClaimedOutput} out) is beyond the tolerance of the market's count ({CountedInput} in, {CountedOutput} out); the market's count is billed")]
    public static partial void UsageClaimRefused(ILogger logger, Guid jobId, string providerId, long claimedInput, long claimedOutput, long countedInput, long countedOutput);

    [LoggerMessage(EventId = 2050, Level = LogLevel.Warning, Message = "Job {JobId}: result of provider {ProviderId} refused: its link (epoch {Epoch}) was taken over")]
    public static partial void ResultRefused(ILogger logger, Guid jobId, string providerId, long epoch);
}
