using Microsoft.Extensions.Logging;

namespace Coinop.Market.Inference.Responses;

/// <summary>Source-generated log messages of the Responses API.</summary>
internal static partial class ResponsesLog
{
    [LoggerMessage(EventId = 2101, Level = LogLevel.Error, Message = "Storing response {ResponseId} failed; it cannot be read or continued")]
    public static partial void StoreFailed(ILogger logger, string responseId, Exception exception);

    [LoggerMessage(EventId = 2102, Level = LogLevel.Debug, Message = "Deleted {Count} expired responses")]
    public static partial void Pruned(ILogger logger, int count);

    [LoggerMessage(EventId = 2103, Level = LogLevel.Warning, Message = "Deleting expired responses failed")]
    public static partial void PruneFailed(ILogger logger, Exception exception);
}
