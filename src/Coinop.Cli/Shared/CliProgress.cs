using Spectre.Console;

namespace Coinop.Cli.Shared;

/// <summary>
/// A spinner with a status line for the long waits of a command (a quote to be paid, a workload to go live, a drain), only
/// when stdout is a terminal: a pipe, a script or <c>--json</c> gets the command's plain output and nothing else.
/// </summary>
public static class CliProgress
{
    /// <summary>Whether to show progress: stdout (and stderr) a terminal, not asked for JSON, and not turned off by <c>NO_COLOR</c>-style dumb terminals.</summary>
    public static bool Shown(bool json) =>
        !json && !Console.IsOutputRedirected && !Console.IsErrorRedirected && AnsiConsole.Profile.Capabilities.Interactive;

    /// <summary>Runs <paramref name="work"/> under a spinner showing <paramref name="status"/> (which the work may update).</summary>
    public static async Task<T> RunAsync<T>(string status, bool json, Func<Action<string>, Task<T>> work)
    {
        if (!Shown(json))
        {
            return await work(_ => { });
        }

        return await AnsiConsole.Status()
            .Spinner(Spinner.Known.Dots)
            .StartAsync(Markup.Escape(status), context => work(text => context.Status(Markup.Escape(text))));
    }

    public static Task<T> RunAsync<T>(string status, bool json, Func<Task<T>> work) => RunAsync(status, json, _ => work());
}
