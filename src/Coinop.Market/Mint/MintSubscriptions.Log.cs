using Microsoft.Extensions.Logging;

namespace Coinop.Market.Mint;

/// <summary>Source-generated log messages of <see cref="MintSubscriptions"/> (event id 3110).</summary>
public sealed partial class MintSubscriptions
{
    [LoggerMessage(EventId = 3110, Level = LogLevel.Debug, Message = "A NUT-17 {Kind} subscription could not be refreshed; asking again on the next tick")]
    private static partial void LogWatchFailed(ILogger logger, string kind, Exception exception);
}
