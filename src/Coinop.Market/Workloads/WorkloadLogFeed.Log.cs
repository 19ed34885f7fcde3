using Microsoft.Extensions.Logging;

namespace Coinop.Market.Workloads;

/// <summary>Source-generated log messages of <see cref="WorkloadLogFeed"/> (event id 5111).</summary>
public sealed partial class WorkloadLogFeed
{
    [LoggerMessage(EventId = 5111, Level = LogLevel.Error, Message = "Could not store {Count} chunks of workload output")]
    private static partial void LogAppendFailed(ILogger logger, int count, Exception exception);
}
