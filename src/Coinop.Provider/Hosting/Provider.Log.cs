using Microsoft.Extensions.Logging;

namespace Coinop.Provider.Hosting;

/// <summary>The agent's log messages (source-generated).</summary>
internal static partial class ProviderLog
{
    [LoggerMessage(1, LogLevel.Information, "Provider {ProviderId} starting (identity {KeyPath}); market {Market}")]
    public static partial void Starting(ILogger logger, string providerId, string keyPath, string market);

    [LoggerMessage(2, LogLevel.Information, "Connected to {Market} and authenticated as provider {ProviderId} (heartbeat TTL {TtlMs} ms)")]
    public static partial void Authenticated(ILogger logger, string market, string providerId, int ttlMs);

    [LoggerMessage(3, LogLevel.Warning, "The market refused authentication: {Reason}")]
    public static partial void AuthRefused(ILogger logger, string reason);

    [LoggerMessage(4, LogLevel.Information, "Capabilities sent: {Count} models ({Models})")]
    public static partial void CapabilitiesSent(ILogger logger, int count, string models);

    [LoggerMessage(5, LogLevel.Warning, "Disconnected from the market: {Reason}; reconnecting in {DelayMs} ms to {Market}")]
    public static partial void Disconnected(ILogger logger, string reason, long delayMs, string market);

    [LoggerMessage(6, LogLevel.Warning, "Job {JobId} ({Model}) failed: {Code}: {Message}")]
    public static partial void JobFailed(ILogger logger, Guid jobId, string model, string code, string message);

    [LoggerMessage(7, LogLevel.Information, "Job {JobId} ({Model}) refused: {Code}: {Message}")]
    public static partial void JobRefused(ILogger logger, Guid jobId, string model, string code, string message);

    [LoggerMessage(8, LogLevel.Warning, "No frame from the market for {SilentMs} ms (TTL + grace): the link is dead")]
    public static partial void LinkDead(ILogger logger, long silentMs);

    [LoggerMessage(9, LogLevel.Information, "Backend {Backend} is up: {Count} models ({Models})")]
    public static partial void BackendUp(ILogger logger, string backend, int count, string models);

    [LoggerMessage(10, LogLevel.Warning, "Backend {Backend} is down: {Problem}")]
    public static partial void BackendDown(ILogger logger, string backend, string problem);

    [LoggerMessage(11, LogLevel.Warning, "No inference backend found (probed {Probed}); start one or pass --backend KIND=URL. Still probing every {IntervalS} s")]
    public static partial void NothingFound(ILogger logger, string probed, double intervalS);

    [LoggerMessage(12, LogLevel.Information, "Draining: no new jobs; waiting up to {TimeoutS} s for {InFlight} jobs in flight")]
    public static partial void DrainStarted(ILogger logger, double timeoutS, int inFlight);

    [LoggerMessage(13, LogLevel.Warning, "Drain deadline passed: abandoning {Count} jobs")]
    public static partial void DrainAbandoned(ILogger logger, int count);

    [LoggerMessage(14, LogLevel.Information, "Drained; closing the market connection")]
    public static partial void Drained(ILogger logger);

    [LoggerMessage(15, LogLevel.Debug, "Ignoring a frame the agent does not understand ({Length} bytes)")]
    public static partial void UnknownFrame(ILogger logger, int length);

    [LoggerMessage(16, LogLevel.Debug, "Job {JobId}: the backend reported no token usage")]
    public static partial void UsageMissing(ILogger logger, Guid jobId);

    [LoggerMessage(17, LogLevel.Warning, "The market speaks protocol version {Version}; this agent speaks {Ours}")]
    public static partial void ProtocolMismatch(ILogger logger, int version, int ours);

    [LoggerMessage(18, LogLevel.Information, "Workloads: isolation {Isolation}, {Egress}, {Limits} limits, {Cpu} cores, {MemoryMb} MB")]
    public static partial void WorkloadsReady(ILogger logger, string isolation, string egress, string limits, double cpu, long memoryMb);

    [LoggerMessage(30, LogLevel.Error, "Refusing {Market}: it presents market id {Offered}, but this provider is pinned to market {Pinned} in {PinPath}; delete that file to move this provider to another market")]
    public static partial void MarketIdChanged(ILogger logger, string market, string offered, string pinned, string pinPath);
}
