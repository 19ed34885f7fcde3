using Microsoft.Extensions.Logging;

namespace Coinop.Market.Abuse;

/// <summary>Source-generated log messages of <see cref="StaleRowSweep"/>.</summary>
internal static partial class StaleRowSweepLog
{
    [LoggerMessage(EventId = 9101, Level = LogLevel.Information, Message = "Pruned {Quotes} stale mint quotes, {Nonces} provider request nonces, {Providers} idle providers")]
    public static partial void Pruned(ILogger logger, int quotes, int nonces, int providers);

    [LoggerMessage(EventId = 9102, Level = LogLevel.Warning, Message = "Stale row sweep failed; next one at the next interval")]
    public static partial void Failed(ILogger logger, Exception exception);
}
