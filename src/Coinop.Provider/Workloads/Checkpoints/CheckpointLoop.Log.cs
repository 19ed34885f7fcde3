using Microsoft.Extensions.Logging;

namespace Coinop.Provider.Workloads.Checkpoints;

internal sealed partial class CheckpointLoop
{
    [LoggerMessage(EventId = 3101, Level = LogLevel.Debug, Message = "Checkpoint of workload {WorkloadId} epoch {Epoch} sent ({Bytes} bytes)")]
    private static partial void LogSent(ILogger logger, string workloadId, long epoch, long bytes);

    [LoggerMessage(EventId = 3102, Level = LogLevel.Warning, Message = "Checkpoint of workload {WorkloadId} epoch {Epoch} failed; the next one is tried at the next interval")]
    private static partial void LogFailed(ILogger logger, string workloadId, long epoch, Exception exception);
}
