using Microsoft.Extensions.Logging;

namespace Coinop.Cli.Shared;

/// <summary>Console logging for long-running commands: short single lines, warnings and up from frameworks.</summary>
public static class HostLogging
{
    public static void Configure(ILoggingBuilder logging)
    {
        logging.ClearProviders();
        logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss ";
        });
        logging.SetMinimumLevel(LogLevel.Information);
        logging.AddFilter("Microsoft", LogLevel.Warning);
        logging.AddFilter("System", LogLevel.Warning);
        var level = Environment.GetEnvironmentVariable("COINOP_LOG_LEVEL");
        if (Enum.TryParse<LogLevel>(level, ignoreCase: true, out var parsed))
        {
            logging.SetMinimumLevel(parsed);
        }
    }
}
