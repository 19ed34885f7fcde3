using System.CommandLine;

namespace Coinop.Cli.Shared;

/// <summary>
/// <c>coinop market install-service</c> and <c>coinop provider install-service</c>: write a hardened systemd unit that
/// runs this coinop with the given data directory and the service's own flags (after <c>--</c>), and say how to enable it.
/// <c>--dry-run</c> prints the unit and nothing else.
/// </summary>
public static class InstallServiceCommand
{
    /// <param name="service">The coinop command the unit runs: <c>market</c> or <c>provider</c>.</param>
    public static Command Create(string service, string description, string defaultUnit, string defaultData, TimeSpan stopTimeout, bool isProvider)
    {
        var data = CliOptions.Data(defaultData, "The service's data directory (made absolute; the only path it may write)");
        var user = new Option<string?>("--user") { Description = "Run the service as this user (recommended; it must own the data directory)" };
        var name = new Option<string>("--name") { Description = "The unit's name", DefaultValueFactory = _ => defaultUnit };
        var unitDir = new Option<string>("--unit-dir") { Description = "Where to write the unit", DefaultValueFactory = _ => "/etc/systemd/system" };
        var dryRun = new Option<bool>("--dry-run") { Description = "Print the unit only; write nothing" };
        var args = new Argument<string[]>("ARGS") { Description = $"More flags for 'coinop {service}', after --", Arity = ArgumentArity.ZeroOrMore };
        var command = new Command("install-service", $"Write a hardened systemd unit that runs 'coinop {service}' (--dry-run prints it)")
        {
            data, user, name, unitDir, dryRun, args,
        };
        command.SetAction(async (parse, ct) =>
        {
            var dataDir = Path.GetFullPath(parse.GetValue(data)!);
            var unitName = parse.GetValue(name)!;
            if (unitName.Length == 0 || !unitName.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or '@'))
            {
                throw new CliException($"'{unitName}' is not a unit name (letters, digits, - _ . @)", 2);
            }

            var extra = parse.GetValue(args) ?? [];
            if (extra.Any(a => a is "--data" || a.StartsWith("--data=", StringComparison.Ordinal)))
            {
                throw new CliException("give the data directory as install-service's --data, not after --", 2);
            }

            // The flags go into the unit as they are: ones 'coinop <service>' refuses would make a unit that never starts.
            var serviceCommand = parse.CommandResult.Command.Parents.OfType<Command>().First();
            var check = serviceCommand.Parse(extra);
            if (check.Errors.Count > 0 || check.CommandResult.Command != serviceCommand)
            {
                var why = check.Errors.Count > 0 ? check.Errors[0].Message : $"'{check.CommandResult.Command.Name}' is a command, not a flag";
                throw new CliException($"'coinop {service} {string.Join(' ', extra)}' would not start: {why}", 2);
            }

            var workloadsInSandbox = isProvider && !extra.Contains("docker", StringComparer.Ordinal); // bubblewrap makes namespaces
            var spec = new ServiceUnitSpec(description, [.. Self(), service, "--data", dataDir, .. extra], dataDir, parse.GetValue(user), stopTimeout,
                MainProcessOnly: isProvider, RestrictNamespaces: !workloadsInSandbox);
            string unit;
            try
            {
                unit = ServiceUnit.Render(spec);
            }
            catch (ArgumentException ex)
            {
                throw new CliException(ex.Message, 2);
            }

            if (parse.GetValue(dryRun))
            {
                Console.Write(unit);
                return 0;
            }

            var path = Path.Combine(parse.GetValue(unitDir)!, unitName.EndsWith(".service", StringComparison.Ordinal) ? unitName : unitName + ".service");
            try
            {
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                await File.WriteAllTextAsync(path, unit, ct);
            }
            catch (UnauthorizedAccessException)
            {
                throw new CliException($"cannot write {path}: run as root, or pass --unit-dir, or --dry-run and install the unit yourself");
            }

            Console.WriteLine($"Wrote {path}");
            var owner = parse.GetValue(user) is { } u ? $" && chown {u}: {Shell(dataDir)}" : "";
            Console.WriteLine($"Create the data directory: mkdir -p {Shell(dataDir)}{owner}");
            Console.WriteLine($"Enable and start it:       systemctl daemon-reload && systemctl enable --now {Path.GetFileName(path)}");
            Console.WriteLine($"Follow its logs:           journalctl -u {Path.GetFileName(path)} -f");
            return 0;
        });
        return command;
    }

    private static string Shell(string value) =>
        value.All(c => char.IsAsciiLetterOrDigit(c) || "_./:=@+,-".Contains(c, StringComparison.Ordinal)) ? value : "'" + value.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    /// <summary>How this coinop was started: its apphost, or the dotnet host and coinop.dll.</summary>
    private static string[] Self()
    {
        var process = Environment.ProcessPath ?? throw new CliException("cannot tell which program this is (no process path)");
        var dll = typeof(InstallServiceCommand).Assembly.Location;
        return Path.GetFileNameWithoutExtension(process) == "dotnet" && dll.Length > 0 ? [process, dll] : [process];
    }
}
