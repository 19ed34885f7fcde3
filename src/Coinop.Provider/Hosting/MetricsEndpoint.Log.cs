using Microsoft.Extensions.Logging;

namespace Coinop.Provider.Hosting;

internal sealed partial class MetricsEndpoint
{
    [LoggerMessage(EventId = 6601, Level = LogLevel.Information, Message = "Metrics at {Url}")]
    private static partial void LogListening(ILogger logger, string url);
}
