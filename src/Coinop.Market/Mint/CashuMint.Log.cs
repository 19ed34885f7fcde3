using Microsoft.Extensions.Logging;

namespace Coinop.Market.Mint;

/// <summary>Source-generated log messages of <see cref="CashuMint"/> (event ids 3011–3012).</summary>
public sealed partial class CashuMint
{
    [LoggerMessage(EventId = 3011, Level = LogLevel.Warning, Message = "Mint quote {QuoteId}: asking the Lightning node about its invoice failed")]
    private static partial void LogInvoiceCheckFailed(ILogger logger, string quoteId, Exception exception);

    [LoggerMessage(EventId = 3012, Level = LogLevel.Warning, Message = "Melt {QuoteId}: the Lightning payment's outcome is unknown; its proofs stay pending until recovery")]
    private static partial void LogPaymentUnknown(ILogger logger, string quoteId, Exception exception);
}
