using Microsoft.Extensions.Logging;

namespace Coinop.Market.Payments;

/// <summary>Source-generated log messages of <see cref="ChangeStock"/> (event id 4101).</summary>
public sealed partial class ChangeStock
{
    [LoggerMessage(EventId = 4101, Level = LogLevel.Warning, Message = "Refilling the change stock failed; retrying later")]
    private static partial void LogRefillFailed(ILogger logger, Exception exception);
}
