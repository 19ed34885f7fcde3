using Microsoft.Extensions.Logging;

namespace Coinop.Market.Gateway;

/// <summary>Source-generated log messages of the provider gateway.</summary>
internal static partial class GatewayLog
{
    [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "Provider {ProviderId} ({Name}) connected")]
    public static partial void ProviderConnected(ILogger logger, string providerId, string name);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Information, Message = "Provider {ProviderId} disconnected: {Reason}")]
    public static partial void ProviderDisconnected(ILogger logger, string providerId, string reason);

    [LoggerMessage(EventId = 1003, Level = LogLevel.Warning, Message = "Provider handshake refused: {Reason}")]
    public static partial void HandshakeRefused(ILogger logger, string reason);

    [LoggerMessage(EventId = 1004, Level = LogLevel.Information, Message = "Provider {ProviderId} replaced by a newer connection")]
    public static partial void ProviderReplaced(ILogger logger, string providerId);

    [LoggerMessage(EventId = 1005, Level = LogLevel.Information, Message = "Provider {ProviderId} offers {Models} models, max {MaxConcurrent} concurrent")]
    public static partial void CapabilitiesReceived(ILogger logger, string providerId, int models, int maxConcurrent);

    [LoggerMessage(EventId = 1006, Level = LogLevel.Information, Message = "Provider {ProviderId} is draining")]
    public static partial void ProviderDraining(ILogger logger, string providerId);

    [LoggerMessage(EventId = 1007, Level = LogLevel.Warning, Message = "Provider {ProviderId} is silent: no heartbeat within TTL + grace")]
    public static partial void ProviderSilent(ILogger logger, string providerId);

    [LoggerMessage(EventId = 1008, Level = LogLevel.Information, Message = "Provider {ProviderId} did not come back within the failover TTL: offline")]
    public static partial void ProviderNotBack(ILogger logger, string providerId);

    [LoggerMessage(EventId = 1009, Level = LogLevel.Error, Message = "Could not record provider {ProviderId} offline")]
    public static partial void StoreUpdateFailed(ILogger logger, string providerId, Exception exception);

    [LoggerMessage(EventId = 1010, Level = LogLevel.Error, Message = "Provider connection failed")]
    public static partial void ConnectionFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 1011, Level = LogLevel.Information, Message = "Market stopping: closing {Count} provider connections")]
    public static partial void ClosingForShutdown(ILogger logger, int count);
}
