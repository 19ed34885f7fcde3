using Microsoft.Extensions.Logging;

namespace Coinop.Market.Mint.Lightning;

/// <summary>Source-generated log messages of <see cref="InvoiceWatcher"/> (event ids 3101–3103).</summary>
internal sealed partial class InvoiceWatcher
{
    [LoggerMessage(EventId = 3101, Level = LogLevel.Information, Message = "Following paid invoices of the {Backend} node from {Cursor}")]
    private static partial void LogWatching(ILogger logger, string backend, string cursor);

    [LoggerMessage(EventId = 3102, Level = LogLevel.Information, Message = "Invoice {PaymentHash} paid ({AmountMsat} msat): its mint quote is PAID")]
    private static partial void LogPaid(ILogger logger, string paymentHash, ulong amountMsat);

    [LoggerMessage(EventId = 3103, Level = LogLevel.Warning, Message = "The {Backend} node's invoice stream broke; reconnecting")]
    private static partial void LogStreamBroke(ILogger logger, string backend, Exception exception);
}
