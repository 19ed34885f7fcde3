using Coinop.Market.Mint.Lightning;
using Microsoft.Extensions.Logging;

namespace Coinop.Market.Mint;

/// <summary>Source-generated log messages of <see cref="PendingMeltReconciler"/> (event ids 3001–3003).</summary>
internal sealed partial class PendingMeltReconciler
{
    [LoggerMessage(EventId = 3001, Level = LogLevel.Information, Message = "Recovered pending melt {QuoteId}: payment {Payment}, quote now {State}")]
    private static partial void LogRecovered(ILogger logger, string quoteId, PaymentState payment, string state);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Warning, Message = "Pending melt {QuoteId}: the Lightning backend has no record of its payment; sending it again")]
    private static partial void LogPayingAgain(ILogger logger, string quoteId);

    [LoggerMessage(EventId = 3003, Level = LogLevel.Warning, Message = "Recovering pending melt {QuoteId} failed; retrying on the next pass")]
    private static partial void LogRecoveryFailed(ILogger logger, string quoteId, Exception exception);
}
