using Microsoft.Extensions.Logging;

namespace Coinop.Provider.Workloads;

/// <summary>Source-generated log messages of <see cref="WorkloadHost"/> (event ids 6121–6123).</summary>
public sealed partial class WorkloadHost
{
    [LoggerMessage(EventId = 6121, Level = LogLevel.Warning, Message = "Workload {WorkloadId} epoch {Epoch} did not start: {Reason}")]
    private static partial void LogStartFailed(ILogger logger, string workloadId, long epoch, string reason);

    [LoggerMessage(EventId = 6122, Level = LogLevel.Information, Message = "Workload {WorkloadId} epoch {Epoch} exited with {ExitCode} (oom {OomKilled})")]
    private static partial void LogExited(ILogger logger, string workloadId, long epoch, int exitCode, bool oomKilled);

    [LoggerMessage(EventId = 6123, Level = LogLevel.Warning, Message = "Could not remove the copy folder {Directory}: {Reason}")]
    private static partial void LogCleanupFailed(ILogger logger, string directory, string reason);
}
