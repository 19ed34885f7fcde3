using Microsoft.Extensions.Logging;

namespace Coinop.Market.Payments;

/// <summary>Source-generated log messages of the payment layer.</summary>
internal static partial class PaymentsLog
{
    [LoggerMessage(EventId = 4001, Level = LogLevel.Warning, Message = "Released {Count} holds ({Msat} msat) of requests that died with this node's previous run or outlived their request")]
    public static partial void HoldsReleased(ILogger logger, int count, long msat);

    [LoggerMessage(EventId = 4002, Level = LogLevel.Warning, Message = "The swap of a token at {Mint} got no answer; the redemption stays pending until recovery")]
    public static partial void ForeignSwapUnknown(ILogger logger, string mint, Exception exception);

    [LoggerMessage(EventId = 4003, Level = LogLevel.Information, Message = "Recovered the redemption of a token at {Mint}: {Outcome}")]
    public static partial void ForeignRecovered(ILogger logger, string mint, string outcome);

    [LoggerMessage(EventId = 4004, Level = LogLevel.Warning, Message = "Payment recovery failed; retrying on the next sweep")]
    public static partial void RecoveryFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 4005, Level = LogLevel.Error, Message = "The mint {Mint} signed a swap but its signatures do not verify; the token's value is lost to the market")]
    public static partial void ForeignSignaturesInvalid(ILogger logger, string mint, Exception exception);
}
