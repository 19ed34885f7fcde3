using Microsoft.Extensions.Logging;

namespace Coinop.Provider.Workloads;

/// <summary>Source-generated log messages of the provider's workload agent (event ids 6001–6099).</summary>
internal static partial class WorkloadAgentLog
{
    [LoggerMessage(EventId = 6001, Level = LogLevel.Debug, Message = "Workload {WorkloadId} epoch {Epoch} started (pid {Pid}, restored checkpoint: {Restored})")]
    public static partial void Started(ILogger logger, string workloadId, long epoch, int pid, string restored);

    [LoggerMessage(EventId = 6002, Level = LogLevel.Warning, Message = "Workload {WorkloadId} epoch {Epoch} not started: {Problem}")]
    public static partial void StartRefused(ILogger logger, string workloadId, long epoch, string problem);

    [LoggerMessage(EventId = 6003, Level = LogLevel.Warning, Message = "Workload {WorkloadId} epoch {Epoch}: no acknowledgement from the market for {SilentMs:0} ms; the copy is stopped by the rule")]
    public static partial void StoppedByRule(ILogger logger, string workloadId, long epoch, double silentMs);

    [LoggerMessage(EventId = 6004, Level = LogLevel.Warning, Message = "Standby reservation for workload {WorkloadId} epoch {Epoch} refused: no room or a stale epoch")]
    public static partial void ReserveRefused(ILogger logger, string workloadId, long epoch);

    [LoggerMessage(EventId = 6005, Level = LogLevel.Error, Message = "Handling the market's {Message} failed")]
    public static partial void MessageFailed(ILogger logger, string message, Exception exception);

    [LoggerMessage(EventId = 6006, Level = LogLevel.Error, Message = "Stopping workload {WorkloadId} epoch {Epoch} failed")]
    public static partial void StopFailed(ILogger logger, string workloadId, long epoch, Exception exception);

    [LoggerMessage(EventId = 6009, Level = LogLevel.Information, Message = "Workloads drained: {Copies} copies stopped and reported")]
    public static partial void Drained(ILogger logger, int copies);

    [LoggerMessage(EventId = 6010, Level = LogLevel.Warning, Message = "Workload drain did not finish within {TimeoutS} s")]
    public static partial void DrainTimedOut(ILogger logger, double timeoutS);
}
