using System.CommandLine;

namespace Coinop.Cli.Shared;

/// <summary>A mistake the user can fix: reported as one line on stderr with a non-zero exit code.</summary>
public sealed class CliException(string message, int exitCode = 1) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}

/// <summary>Parses, reports errors in one line, and runs the chosen command with Ctrl-C wired to cancellation.</summary>
public static class CommandRunner
{
    public static async Task<int> RunAsync(RootCommand root, string[] args)
    {
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            var command = string.Join(' ', parse.CommandResult.Command is RootCommand ? ["coinop"] : CommandPath(parse));
            // The most specific message first: an unknown word says more than "required command was not provided".
            var error = parse.Errors.FirstOrDefault(e => e.Message.StartsWith("Unrecognized", StringComparison.Ordinal)) ?? parse.Errors[0];
            await Console.Error.WriteLineAsync($"coinop: {error.Message} (see '{command} --help')");
            return 2;
        }

        try
        {
            // ProcessTerminationTimeout = null: System.CommandLine would otherwise end the process two seconds after
            // SIGTERM/Ctrl-C, cutting short a host's graceful stop (a provider's drain, a market's shutdown). Hosts
            // handle the signals themselves; other commands keep the runtime's default (exit at once).
            return await parse.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null });
        }
        catch (CliException ex)
        {
            await Console.Error.WriteLineAsync($"coinop: {ex.Message}");
            return ex.ExitCode;
        }
        catch (OperationCanceledException)
        {
            return 130;
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or Microsoft.Extensions.Options.OptionsValidationException
            or System.ComponentModel.DataAnnotations.ValidationException)
        {
            await Console.Error.WriteLineAsync($"coinop: {FirstLine(ex.Message)}");
            return 1;
        }
    }

    private static IEnumerable<string> CommandPath(ParseResult parse)
    {
        var names = new Stack<string>();
        for (var r = parse.CommandResult; r is not null; r = r.Parent as System.CommandLine.Parsing.CommandResult)
        {
            names.Push(r.Command is RootCommand ? "coinop" : r.Command.Name);
        }

        return names;
    }

    private static string FirstLine(string text)
    {
        var i = text.IndexOf('\n', StringComparison.Ordinal);
        return i < 0 ? text : text[..i].TrimEnd();
    }
}
