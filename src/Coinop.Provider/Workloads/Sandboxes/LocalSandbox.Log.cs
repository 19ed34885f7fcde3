using Microsoft.Extensions.Logging;

namespace Coinop.Provider.Workloads.Sandboxes;

/// <summary>Source-generated log messages of <see cref="LocalSandbox"/> (event ids 6111–6112).</summary>
public sealed partial class LocalSandbox
{
    [LoggerMessage(EventId = 6111, Level = LogLevel.Warning, Message = "Bubblewrap is unavailable and --unsafe-no-sandbox is set: workloads run as plain processes with isolation 'none': {Reason}")]
    private static partial void LogBubblewrapUnavailable(ILogger logger, string reason);

    [LoggerMessage(EventId = 6112, Level = LogLevel.Information, Message = "Workload {WorkloadId} epoch {Epoch} started in {Sandbox} as pid {Pid}")]
    private static partial void LogStarted(ILogger logger, string workloadId, long epoch, string sandbox, int pid);
}
