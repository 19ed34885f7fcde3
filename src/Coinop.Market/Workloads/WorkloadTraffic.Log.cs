using Microsoft.Extensions.Logging;

namespace Coinop.Market.Workloads;

/// <summary>Source-generated log messages of <see cref="WorkloadTraffic"/> (event ids 5101–5104).</summary>
public sealed partial class WorkloadTraffic
{
    [LoggerMessage(EventId = 5101, Level = LogLevel.Warning, Message = "Provider {Provider} sent a usage record for workload {WorkloadId} that does not verify with its identity key; dropped")]
    private static partial void LogBadUsage(ILogger logger, string provider, string workloadId);

    [LoggerMessage(EventId = 5102, Level = LogLevel.Warning, Message = "Provider {Provider} sent a checkpoint of workload {WorkloadId} ({Size} bytes) that is incomplete, altered or over {Max} bytes; dropped")]
    private static partial void LogBadCheckpoint(ILogger logger, string provider, string workloadId, long size, long max);

    [LoggerMessage(EventId = 5103, Level = LogLevel.Warning, Message = "Provider {Provider} queued more workload messages than the supervisor handles for one provider; disconnected, and what it queued is dropped")]
    private static partial void LogFlooded(ILogger logger, string provider);

    [LoggerMessage(EventId = 5104, Level = LogLevel.Warning, Message = "Output of workload {WorkloadId} dropped: the log store is behind")]
    private static partial void LogOutputDropped(ILogger logger, string workloadId);
}
