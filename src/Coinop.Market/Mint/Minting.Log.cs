using Microsoft.Extensions.Logging;

namespace Coinop.Market.Mint;

/// <summary>Source-generated log messages of <see cref="Minting"/> (event id 3011).</summary>
public sealed partial class Minting
{
    [LoggerMessage(EventId = 3011, Level = LogLevel.Warning, Message = "Mint quote {QuoteId}: asking the Lightning node about its invoice failed")]
    private static partial void LogInvoiceCheckFailed(ILogger logger, string quoteId, Exception exception);
}
