using Microsoft.Extensions.Logging;

namespace Coinop.Provider.Workloads.Limits;

internal static partial class DiskWatch
{
    [LoggerMessage(EventId = 3201, Level = LogLevel.Warning, Message = "The copy in {Folder} is stopped: {Reason}")]
    private static partial void LogOverCap(ILogger logger, string folder, string reason);

    [LoggerMessage(EventId = 3202, Level = LogLevel.Debug, Message = "The disk use of the copy in {Folder} could not be measured this time: {Reason}")]
    private static partial void LogUnmeasured(ILogger logger, string folder, string reason);
}
