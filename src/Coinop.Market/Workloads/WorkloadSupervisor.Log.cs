using Microsoft.Extensions.Logging;

namespace Coinop.Market.Workloads;

/// <summary>Source-generated log messages of the workload supervisor and its parts (event ids 5001–5099).</summary>
internal static partial class WorkloadSupervisorLog
{
    [LoggerMessage(EventId = 5001, Level = LogLevel.Information, Message = "Supervising {Count} open workloads")]
    public static partial void Loaded(ILogger logger, int count);

    [LoggerMessage(EventId = 5002, Level = LogLevel.Critical, Message = "Could not load the open workloads")]
    public static partial void LoadFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 5003, Level = LogLevel.Error, Message = "Workload command {Command} failed")]
    public static partial void CommandFailed(ILogger logger, string command, Exception exception);

    [LoggerMessage(EventId = 5004, Level = LogLevel.Information, Message = "Workload {WorkloadId} submitted: primary {Provider}, {Standbys} standbys, command {Command}")]
    public static partial void Submitted(ILogger logger, string workloadId, string provider, int standbys, string command);

    [LoggerMessage(EventId = 5005, Level = LogLevel.Information, Message = "Workload {WorkloadId} epoch {Epoch} starting on {Provider} (restore {Checkpoint})")]
    public static partial void Starting(ILogger logger, string workloadId, long epoch, string provider, string checkpoint);

    [LoggerMessage(EventId = 5006, Level = LogLevel.Information, Message = "Workload {WorkloadId} {State}: {Reason}")]
    public static partial void Finished(ILogger logger, string workloadId, string state, string reason);

    [LoggerMessage(EventId = 5007, Level = LogLevel.Error, Message = "Workload {WorkloadId}: the kernel refused to revoke epoch {Epoch}: {Refusal}")]
    public static partial void RevokeRefused(ILogger logger, string workloadId, long epoch, string refusal);

    [LoggerMessage(EventId = 5008, Level = LogLevel.Warning, Message = "Workload {WorkloadId}: the kernel refused to finish it: {Refusal}")]
    public static partial void FinishRefused(ILogger logger, string workloadId, string refusal);

    [LoggerMessage(EventId = 5009, Level = LogLevel.Warning, Message = "Workload {WorkloadId} was changed by another writer; continuing from the stored state")]
    public static partial void Conflict(ILogger logger, string workloadId);

    [LoggerMessage(EventId = 5010, Level = LogLevel.Debug, Message = "Usage of workload {WorkloadId} epoch {Epoch} from {Provider} refused: not the current lease holder (or already recorded)")]
    public static partial void UsageRefused(ILogger logger, string workloadId, long epoch, string provider);

    [LoggerMessage(EventId = 5011, Level = LogLevel.Debug, Message = "Access receipt of workload {WorkloadId} epoch {Epoch} from {Provider} refused: not the current lease holder")]
    public static partial void ReceiptRefused(ILogger logger, string workloadId, long epoch, string provider);

    [LoggerMessage(EventId = 5012, Level = LogLevel.Information, Message = "Checkpoint of workload {WorkloadId} epoch {Epoch} from {Provider} refused: not the current copy")]
    public static partial void CheckpointRefused(ILogger logger, string workloadId, long epoch, string provider);

    [LoggerMessage(EventId = 5013, Level = LogLevel.Information, Message = "Workload {WorkloadId}: revoking epoch {Epoch} ({Reason})")]
    public static partial void Revoking(ILogger logger, string workloadId, long epoch, string reason);

    [LoggerMessage(EventId = 5014, Level = LogLevel.Information, Message = "Workload {WorkloadId}: report {Report} ignored: {Why}")]
    public static partial void ReportIgnored(ILogger logger, string workloadId, string report, string why);

    [LoggerMessage(EventId = 5015, Level = LogLevel.Error, Message = "Workload {WorkloadId}: billing failed; it is tried again later")]
    public static partial void BillingFailed(ILogger logger, string workloadId, Exception exception);

    [LoggerMessage(EventId = 5016, Level = LogLevel.Information, Message = "Provider {Provider} drained: {Released} workload leases released, {Abandoned} abandoned")]
    public static partial void OwnerDrained(ILogger logger, string provider, int released, int abandoned);

    [LoggerMessage(EventId = 5017, Level = LogLevel.Warning, Message = "{Command} from provider {Provider} ignored: it came over link epoch {Epoch}, which another link has replaced")]
    public static partial void RevokedLinkIgnored(ILogger logger, string command, string provider, long epoch);
}
