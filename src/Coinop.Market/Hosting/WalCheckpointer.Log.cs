using Microsoft.Extensions.Logging;

namespace Coinop.Market.Hosting;

/// <summary>Source-generated log messages of <see cref="WalCheckpointer"/>.</summary>
internal static partial class WalCheckpointerLog
{
    [LoggerMessage(EventId = 9201, Level = LogLevel.Warning, Message = "WAL checkpoint failed; the next one at the next interval (writers checkpoint on their own past the bound)")]
    public static partial void Failed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 9202, Level = LogLevel.Debug, Message = "WAL checkpoint copied {Checkpointed} of {WalPages} pages; readers or the writer still use the rest")]
    public static partial void Partial(ILogger logger, long checkpointed, long walPages);
}
