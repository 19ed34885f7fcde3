using Microsoft.Extensions.Logging;

namespace Coinop.Market.Mint;

/// <summary>Source-generated log messages of <see cref="MintSubscriptions"/> (event ids 3110-3112).</summary>
public sealed partial class MintSubscriptions
{
    [LoggerMessage(EventId = 3110, Level = LogLevel.Debug, Message = "A NUT-17 {Kind} subscription could not be refreshed; asking again on the next tick")]
    private static partial void LogWatchFailed(ILogger logger, string kind, Exception exception);

    [LoggerMessage(EventId = 3111, Level = LogLevel.Warning, Message = "A NUT-17 connection from {Client} was refused: it holds {Max} already")]
    private static partial void LogTooManyConnections(ILogger logger, string client, int max);

    [LoggerMessage(EventId = 3112, Level = LogLevel.Information, Message = "A NUT-17 connection from {Client} was closed: a message to it (or its close) took longer than {SendTimeout}")]
    private static partial void LogSlowClient(ILogger logger, string client, TimeSpan sendTimeout);
}
