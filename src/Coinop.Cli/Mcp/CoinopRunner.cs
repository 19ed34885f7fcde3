using System.Diagnostics;
using System.Reflection;
using ModelContextProtocol.Protocol;

namespace Coinop.Cli.Mcp;

/// <summary>
/// Runs one <c>coinop</c> command for a tool call, as a child process of this same executable: the tools are the CLI
/// commands themselves (same flags, same payment and refund handling, same wallet locks), not a second client. A child
/// also keeps what the commands print to stdout and read from stdin away from the protocol, which owns both here.
/// </summary>
public sealed class CoinopRunner(string market, string data, string wallet, ulong? maxSat)
{
    public string Market { get; } = market;

    public string Data { get; } = data;

    public string Wallet { get; } = wallet;

    /// <summary><c>--max-sat N</c> when the server was given one, else nothing (each command keeps its default).</summary>
    public IEnumerable<string> MaxSat => maxSat is { } sat ? ["--max-sat", sat.ToString(System.Globalization.CultureInfo.InvariantCulture)] : [];

    /// <summary>
    /// Runs <c>coinop ARGS</c> to its end. Success is its stdout, with what it said on stderr (what was paid, refunds)
    /// as a second block; a non-zero exit is a tool error carrying the command's one-line message.
    /// </summary>
    public async Task<CallToolResult> RunAsync(IEnumerable<string> args, CancellationToken cancellationToken)
    {
        var (output, notes, exit) = await RunRawAsync(args, cancellationToken);
        if (exit != 0)
        {
            var message = notes.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault() ?? $"coinop exited with {exit}";
            return new CallToolResult { IsError = true, Content = [new TextContentBlock { Text = message }] };
        }

        var content = new List<ContentBlock> { new TextContentBlock { Text = output } };
        if (notes.Trim() is { Length: > 0 } said)
        {
            content.Add(new TextContentBlock { Text = said });
        }

        return new CallToolResult { Content = content };
    }

    /// <summary>Runs <c>coinop ARGS</c>; returns its stdout, stderr and exit code.</summary>
    public async Task<(string Output, string Notes, int Exit)> RunRawAsync(IEnumerable<string> args, CancellationToken cancellationToken)
    {
        var start = Self();
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start coinop");
        process.StandardInput.Close();
        // A cancelled call stops waiting but lets the command finish: one that has paid settles its change or refund
        // into the wallet on the way out, and killing it there could lose that money.
        var output = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        var notes = process.StandardError.ReadToEndAsync(CancellationToken.None);
        await process.WaitForExitAsync(cancellationToken);
        return (await output, await notes, process.ExitCode);
    }

    /// <summary>This coinop again: the apphost itself, or <c>dotnet coinop.dll</c> when run that way.</summary>
    private static ProcessStartInfo Self()
    {
        var path = Environment.ProcessPath ?? throw new InvalidOperationException("the coinop executable's path is unknown");
        var start = new ProcessStartInfo(path)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        if (Path.GetFileNameWithoutExtension(path) == "dotnet")
        {
            start.ArgumentList.Add(Assembly.GetEntryAssembly()?.Location ?? throw new InvalidOperationException("the coinop assembly's path is unknown"));
        }

        return start;
    }
}
