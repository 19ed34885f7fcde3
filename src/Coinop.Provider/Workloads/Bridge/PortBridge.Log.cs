using Microsoft.Extensions.Logging;

namespace Coinop.Provider.Workloads.Bridge;

/// <summary>Source-generated log messages of <see cref="PortBridge"/> (event id 6131).</summary>
public sealed partial class PortBridge
{
    [LoggerMessage(EventId = 6131, Level = LogLevel.Information, Message = "Port bridge refused a client without the access credential from {Remote}")]
    private static partial void LogRefused(ILogger logger, string remote);
}
