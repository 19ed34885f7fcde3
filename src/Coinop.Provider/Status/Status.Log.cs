using Microsoft.Extensions.Logging;

namespace Coinop.Provider.Status;

/// <summary>Source-generated log messages of the status file.</summary>
internal static partial class StatusLog
{
    [LoggerMessage(EventId = 6501, Level = LogLevel.Warning, Message = "Cannot write the status file {Path} ({Problem}); coinop provider status will show stale data")]
    public static partial void WriteFailed(ILogger logger, string path, string problem);
}
