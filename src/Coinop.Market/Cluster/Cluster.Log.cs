using Microsoft.Extensions.Logging;

namespace Coinop.Market.Cluster;

/// <summary>Source-generated log messages of the node registry, the shared view, forwarding and duties.</summary>
internal static partial class ClusterLog
{
    [LoggerMessage(EventId = 6001, Level = LogLevel.Information, Message = "Node {NodeId} joined the market (run {Incarnation}, reachable at {NodeUrl})")]
    public static partial void NodeJoined(ILogger logger, string nodeId, string incarnation, string nodeUrl);

    [LoggerMessage(EventId = 6002, Level = LogLevel.Information, Message = "Node {NodeId} left the market")]
    public static partial void NodeLeft(ILogger logger, string nodeId);

    [LoggerMessage(EventId = 6003, Level = LogLevel.Warning, Message = "Node heartbeat failed; retrying")]
    public static partial void HeartbeatFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 6004, Level = LogLevel.Critical, Message = "Node {NodeId}: another run took over this node id (this run {Incarnation} is not part of the market any more)")]
    public static partial void NodeSuperseded(ILogger logger, string nodeId, string incarnation);

    [LoggerMessage(EventId = 6005, Level = LogLevel.Warning, Message = "Reading the other nodes failed; routing keeps the last view")]
    public static partial void ViewRefreshFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 6006, Level = LogLevel.Information, Message = "Provider {ProviderId} linked again (node {NodeId}, epoch {Epoch}): closing this node's link of epoch {OldEpoch}")]
    public static partial void LinkSuperseded(ILogger logger, string providerId, long oldEpoch, string nodeId, long epoch);

    [LoggerMessage(EventId = 6007, Level = LogLevel.Warning, Message = "Publishing provider figures failed; retrying")]
    public static partial void PublishFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 6008, Level = LogLevel.Warning, Message = "Market node {NodeId} unreachable ({Reason}): not forwarding there for a while")]
    public static partial void NodeUnreachable(ILogger logger, string nodeId, string reason);

    [LoggerMessage(EventId = 6009, Level = LogLevel.Warning, Message = "Refused an unauthenticated request for the node-to-node channel from {Remote}")]
    public static partial void ForwardUnauthenticated(ILogger logger, string remote);

    [LoggerMessage(EventId = 6010, Level = LogLevel.Debug, Message = "Forwarded job {JobId} from node {NodeId} cancelled")]
    public static partial void ForwardCancelled(ILogger logger, Guid jobId, string nodeId);

    [LoggerMessage(EventId = 6011, Level = LogLevel.Information, Message = "Duty {Duty} taken by node {NodeId} (fence {Fence})")]
    public static partial void DutyTaken(ILogger logger, string duty, string nodeId, long fence);

    [LoggerMessage(EventId = 6012, Level = LogLevel.Warning, Message = "Duty {Duty} lost: {Reason}")]
    public static partial void DutyLost(ILogger logger, string duty, string reason);

    [LoggerMessage(EventId = 6013, Level = LogLevel.Information, Message = "Duty {Duty} handed back by node {NodeId}")]
    public static partial void DutyReleased(ILogger logger, string duty, string nodeId);

    [LoggerMessage(EventId = 6014, Level = LogLevel.Error, Message = "Duty {Duty} failed; it starts again")]
    public static partial void DutyFailed(ILogger logger, string duty, Exception exception);

    [LoggerMessage(EventId = 6015, Level = LogLevel.Warning, Message = "Duty lease {Id}: the store failed")]
    public static partial void DutyStoreFailed(ILogger logger, string id, Exception exception);

    [LoggerMessage(EventId = 6016, Level = LogLevel.Information, Message = "Took over {Count} provider links of dead nodes (closed; their providers are offline until they link again)")]
    public static partial void LinksTakenOver(ILogger logger, int count);

    [LoggerMessage(EventId = 6017, Level = LogLevel.Information, Message = "Released {Count} holds ({Msat} msat) of dead node {NodeId} into their payers' balances")]
    public static partial void HoldsTakenOver(ILogger logger, int count, long msat, string nodeId);

    [LoggerMessage(EventId = 6018, Level = LogLevel.Warning, Message = "Taking over dead nodes' leftovers failed; retrying")]
    public static partial void TakeoverFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 6019, Level = LogLevel.Information, Message = "Node {NodeId} supervises the market's workloads now")]
    public static partial void SupervisingWorkloads(ILogger logger, string nodeId);

    [LoggerMessage(EventId = 6020, Level = LogLevel.Critical, Message = "Node {NodeId} lost the workload supervisor lock; stopping so that no second writer can act on workloads")]
    public static partial void WorkloadLockLost(ILogger logger, string nodeId, Exception? exception);

    [LoggerMessage(EventId = 6021, Level = LogLevel.Information, Message = "Provider {ProviderId} offers workloads, which node {Holder} supervises: sent there")]
    public static partial void WorkloadProviderSent(ILogger logger, string providerId, string holder);

    [LoggerMessage(EventId = 6022, Level = LogLevel.Warning, Message = "The workload supervisor lock could not be tried; trying again")]
    public static partial void WorkloadLockFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 6023, Level = LogLevel.Warning, Message = "Forwarding {Method} {Path} to the supervising node {Holder} failed")]
    public static partial void WorkloadForwardFailed(ILogger logger, string method, string path, string holder, Exception exception);
}
