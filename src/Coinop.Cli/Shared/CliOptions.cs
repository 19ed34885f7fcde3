using System.CommandLine;
using Coinop.Core.Text;

namespace Coinop.Cli.Shared;

/// <summary>Options shared by several commands, defined once so names and help stay consistent.</summary>
public static class CliOptions
{
    public static Option<string> Market(bool required = true) => new("--market")
    {
        Description = "The market's base URL, e.g. http://127.0.0.1:3338",
        Required = required,
        CustomParser = r => ParseUrl(r.Tokens[0].Value, r),
    };

    public static Option<string> Data(string defaultDir, string description = "Data directory") => new("--data")
    {
        Description = description,
        DefaultValueFactory = _ => defaultDir,
    };

    /// <summary>The most sats a command may send to the market for one payment without being told otherwise.</summary>
    public static Option<ulong> MaxSat(ulong defaultSat, string what) => new("--max-sat")
    {
        Description = $"Most sats to send for {what} (the market's change comes back); a payment request for more is refused",
        DefaultValueFactory = _ => defaultSat,
    };

    public static Option<bool> Json() => new("--json") { Description = "Print JSON instead of a table" };

    public static Option<TimeSpan?> Duration(string name, string description) => new(name)
    {
        Description = description + " (e.g. 90s, 15m, 24h, 7d)",
        CustomParser = r =>
        {
            if (DurationText.TryParse(r.Tokens[0].Value, out var d))
            {
                return d;
            }

            r.AddError($"'{r.Tokens[0].Value}' is not a duration for {name}: use e.g. 90s, 15m, 24h or 7d");
            return null;
        },
    };

    private static string ParseUrl(string value, System.CommandLine.Parsing.ArgumentResult result)
    {
        if (Uri.TryCreate(value, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https")
        {
            return value.TrimEnd('/');
        }

        result.AddError($"'{value}' is not an http(s) URL");
        return value;
    }
}
