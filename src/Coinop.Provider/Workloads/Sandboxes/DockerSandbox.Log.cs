using Microsoft.Extensions.Logging;

namespace Coinop.Provider.Workloads.Sandboxes;

/// <summary>Source-generated log messages of <see cref="DockerSandbox"/> (event id 6101).</summary>
public sealed partial class DockerSandbox
{
    [LoggerMessage(EventId = 6101, Level = LogLevel.Information, Message = "Workload {WorkloadId} epoch {Epoch} started in container {ContainerId}")]
    private static partial void LogStarted(ILogger logger, string workloadId, long epoch, string containerId);
}
