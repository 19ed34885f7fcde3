using System.Text.RegularExpressions;
using Coinop.TestKit;

namespace Coinop.Market.Tests.Abuse;

/// <summary>
/// Every <c>coinop</c> command, found by walking <c>--help</c> from the root (so a command added later is swept too), given
/// an unknown flag, and each of its options without the value it needs: one line on stderr and a non-zero exit, never a
/// stack trace, a help page or a command that runs anyway. (Build src/Coinop.Cli first.)
/// </summary>
public partial class CliSweepTests
{
    /// <summary>The CLI had 32 commands (groups included) when the sweep was written: a walk that finds fewer is broken.</summary>
    private const int MinimumCommands = 30;

    [Fact]
    public async Task Every_command_given_malformed_arguments_prints_one_line_and_exits_non_zero()
    {
        var commands = new List<(string[] Path, string[] ValueOptions)>();
        await WalkAsync([], commands);
        Assert.True(commands.Count >= MinimumCommands, $"the walk found only {commands.Count} commands: {string.Join(", ", commands.Select(c => string.Join(' ', c.Path)))}");

        // Should a command take the malformed line and run, it runs in a temporary directory (relative data paths land
        // there), and one that writes a system unit writes it there too, never into /etc.
        using var dir = new TempDirectory("coinop-cli-sweep");
        string[] Contained((string[] Path, string[] ValueOptions) command, string tried) =>
            command.ValueOptions.Contains("--unit-dir") && tried != "--unit-dir" ? ["--unit-dir", dir.Path] : [];
        var cases = commands
            .SelectMany(c => c.ValueOptions.Select(o => (string[])[.. c.Path, .. Contained(c, o), o]).Prepend([.. c.Path, "--no-such-flag", .. Contained(c, "")]))
            .ToList();
        using var slots = new SemaphoreSlim(4);
        var failures = await Task.WhenAll(cases.Select(async args =>
        {
            await slots.WaitAsync(TestContext.Current.CancellationToken);
            try
            {
                var (exit, output) = await RunAsync(args, dir.Path);
                var lines = output.Trim().Split('\n');
                return exit != 0 && lines.Length == 1 && lines[0].StartsWith("coinop: ", StringComparison.Ordinal)
                    ? null
                    : $"coinop {string.Join(' ', args)}: exit {exit}, {lines.Length} lines:\n{string.Join('\n', lines.Take(5))}";
            }
            finally
            {
                slots.Release();
            }
        }));

        var bad = failures.OfType<string>().ToList();
        Assert.True(bad.Count == 0, $"{bad.Count} of {cases.Count} malformed command lines were answered badly:\n\n{string.Join("\n\n", bad)}");
    }

    /// <summary>What the sweep found, kept as focused checks (before: a stack trace with exit 134; a unit written with exit 0).</summary>
    [Theory]
    [InlineData("workload,topup,0123456789abcdef0123456789abcdef,--duration", "Required argument missing for option: '--duration'")]
    [InlineData("workload,topup,0123456789abcdef0123456789abcdef,--amount,many", "many")]
    [InlineData("market,install-service,--dry-run,--,--no-such-flag", "'coinop market --no-such-flag' would not start")]
    [InlineData("provider,install-service,--dry-run,--,status", "'status' is a command, not a flag")]
    public async Task Malformed_lines_the_sweep_found_are_one_line_and_exit_2(string args, string says)
    {
        using var dir = new TempDirectory("coinop-cli-sweep");
        var (exit, output) = await RunAsync(args.Split(','), dir.Path);
        Assert.Equal(2, exit);
        Assert.Contains(says, Assert.Single(output.Trim().Split('\n')), StringComparison.Ordinal);
    }

    /// <summary>Reads the command's help: its options that take a value, then each subcommand's.</summary>
    private static async Task WalkAsync(string[] path, List<(string[] Path, string[] ValueOptions)> commands)
    {
        var (exit, help) = await RunAsync([.. path, "--help"], null);
        Assert.True(exit == 0, $"coinop {string.Join(' ', path)} --help: exit {exit}\n{help}");
        var section = "";
        var options = new List<string>();
        var subcommands = new List<string>();
        foreach (var line in help.Split('\n'))
        {
            if (SectionLine().Match(line) is { Success: true } header)
            {
                section = header.Groups[1].Value;
            }
            else if (section == "Options" && OptionLine().Match(line) is { Success: true } option && option.Groups[1].Value is not ("--help" or "--version"))
            {
                options.Add(option.Groups[1].Value);
            }
            else if (section == "Commands" && CommandLine().Match(line) is { Success: true } command)
            {
                subcommands.Add(command.Groups[1].Value);
            }
        }

        commands.Add((path, [.. options]));
        foreach (var sub in subcommands)
        {
            await WalkAsync([.. path, sub], commands);
        }
    }

    private static async Task<(int Exit, string Output)> RunAsync(string[] args, string? workingDirectory)
    {
        await using var process = ChildProcess.StartCoinop("coinop " + string.Join(' ', args), args, workingDirectory: workingDirectory);
        var exit = await process.WaitForExitAsync(TimeSpan.FromSeconds(60));
        return (exit, process.Output);
    }

    [GeneratedRegex(@"^(\w+):\s*$")]
    private static partial Regex SectionLine();

    /// <summary>An option that requires a value: <c>  --name &lt;value&gt;</c> (aliases before it; an optional <c>[&lt;value&gt;]</c> does not count).</summary>
    [GeneratedRegex(@"^  (?:-\S+, )*(--[a-z0-9-]+) <[^>]+>")]
    private static partial Regex OptionLine();

    [GeneratedRegex(@"^  ([a-z][a-z0-9-]*)(?:\s|$)")]
    private static partial Regex CommandLine();
}
