using Microsoft.Extensions.Logging;

namespace Coinop.Market.Mint;

/// <summary>Source-generated log messages of <see cref="Melting"/> (event id 3012).</summary>
public sealed partial class Melting
{
    [LoggerMessage(EventId = 3012, Level = LogLevel.Warning, Message = "Melt {QuoteId}: the Lightning payment's outcome is unknown; its proofs stay pending until recovery")]
    private static partial void LogPaymentUnknown(ILogger logger, string quoteId, Exception exception);
}
