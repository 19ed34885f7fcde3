using System.Text;

namespace Coinop.Cli.Shared;

/// <summary>What a systemd unit for a coinop service runs and where it may write.</summary>
/// <param name="Description">The unit's description.</param>
/// <param name="Command">The program and its arguments (e.g. dotnet, coinop.dll, market, --data, DIR, ...).</param>
/// <param name="DataDir">The absolute data directory: the only place the service may write.</param>
/// <param name="User">The user to run as; null runs as root (not recommended).</param>
/// <param name="StopTimeout">How long systemd waits after SIGTERM before it kills (a provider drains first).</param>
/// <param name="MainProcessOnly">SIGTERM to the main process only, so it can stop its children (workload copies) itself.</param>
/// <param name="RestrictNamespaces">Forbid new namespaces (not for a provider whose workloads run in bubblewrap).</param>
public sealed record ServiceUnitSpec(
    string Description,
    IReadOnlyList<string> Command,
    string DataDir,
    string? User,
    TimeSpan StopTimeout,
    bool MainProcessOnly,
    bool RestrictNamespaces);

/// <summary>
/// Writes a hardened systemd service unit: no new privileges, a read-only system (<c>ProtectSystem=strict</c>) with the
/// data directory the only writable path, private /tmp and devices, kernel tunables and modules protected, restart on
/// failure. Pure: text in, text out; every value is checked and quoted, so no argument can add a line or a directive.
/// </summary>
public static class ServiceUnit
{
    public static string Render(ServiceUnitSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (!Path.IsPathFullyQualified(spec.DataDir))
        {
            throw new ArgumentException($"the data directory must be an absolute path: {spec.DataDir}");
        }

        if (spec.Command.Count == 0 || !Path.IsPathFullyQualified(spec.Command[0]))
        {
            throw new ArgumentException("the command must start with an absolute path to the program");
        }

        foreach (var value in spec.Command.Append(spec.DataDir).Append(spec.Description).Append(spec.User ?? ""))
        {
            if (value.Any(char.IsControl))
            {
                throw new ArgumentException($"a value contains a control character (newline, tab...): {value.Replace("\n", "\\n", StringComparison.Ordinal)}");
            }
        }

        if (spec.User is { } user && (user.Length == 0 || !user.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.')))
        {
            throw new ArgumentException($"'{user}' is not a user name");
        }

        var unit = new StringBuilder();
        unit.AppendLine("# Written by coinop install-service. Enable with: systemctl daemon-reload && systemctl enable --now <this unit>");
        unit.AppendLine("[Unit]");
        unit.AppendLine("Description=" + Escape(spec.Description));
        unit.AppendLine("After=network-online.target");
        unit.AppendLine("Wants=network-online.target");
        unit.AppendLine();
        unit.AppendLine("[Service]");
        unit.AppendLine("Type=exec");
        unit.AppendLine("ExecStart=" + string.Join(' ', spec.Command.Select(a => Quote(a).Replace("$", "$$", StringComparison.Ordinal))));
        unit.AppendLine("WorkingDirectory=" + Escape(spec.DataDir)); // the rest of the line is the path: not quoted
        if (spec.User is not null)
        {
            unit.AppendLine("User=" + spec.User);
            unit.AppendLine("Group=" + spec.User);
        }

        unit.AppendLine("Environment=DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1");
        unit.AppendLine("Restart=on-failure");
        unit.AppendLine("RestartSec=5s");
        unit.AppendLine("KillSignal=SIGTERM");
        if (spec.MainProcessOnly)
        {
            unit.AppendLine("KillMode=mixed");
        }

        unit.AppendLine(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"TimeoutStopSec={(long)Math.Ceiling(spec.StopTimeout.TotalSeconds)}s"));
        unit.AppendLine("LimitNOFILE=65536");
        unit.AppendLine("# Hardening: the data directory is the only writable path.");
        unit.AppendLine("NoNewPrivileges=true");
        unit.AppendLine("ProtectSystem=strict");
        unit.AppendLine("ProtectHome=read-only");
        unit.AppendLine("ReadWritePaths=" + Quote(spec.DataDir));
        unit.AppendLine("PrivateTmp=true");
        unit.AppendLine("PrivateDevices=true");
        unit.AppendLine("ProtectKernelTunables=true");
        unit.AppendLine("ProtectKernelModules=true");
        unit.AppendLine("ProtectKernelLogs=true");
        unit.AppendLine("ProtectControlGroups=true");
        unit.AppendLine("ProtectClock=true");
        unit.AppendLine("ProtectHostname=true");
        unit.AppendLine("RestrictSUIDSGID=true");
        unit.AppendLine("RestrictRealtime=true");
        unit.AppendLine("LockPersonality=true");
        unit.AppendLine("RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK");
        unit.AppendLine("SystemCallArchitectures=native");
        if (spec.RestrictNamespaces)
        {
            unit.AppendLine("RestrictNamespaces=true");
        }

        unit.AppendLine();
        unit.AppendLine("[Install]");
        unit.AppendLine("WantedBy=multi-user.target");
        return unit.ToString();
    }

    /// <summary>
    /// One word of a list as systemd reads it: plain when it is plain, else double-quoted with backslash escapes; <c>%</c>
    /// (specifiers) doubled so it stays literal. (In ExecStart <c>$</c> is doubled too: only there does it expand variables.)
    /// </summary>
    public static string Quote(string value)
    {
        var plain = value.Length > 0 && value.All(c => char.IsAsciiLetterOrDigit(c) || "_./:=@+,-".Contains(c, StringComparison.Ordinal));
        var text = plain ? value : "\"" + value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";
        return Escape(text);
    }

    private static string Escape(string value) => value.Replace("%", "%%", StringComparison.Ordinal);
}
