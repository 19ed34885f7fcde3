using System.Diagnostics;
using System.Globalization;
using Coinop.Provider.Workloads.Limits;

namespace Coinop.Provider.Workloads.Sandboxes;

/// <summary>
/// The command line that starts a local copy: <c>setpriv --pdeathsig SIGKILL</c> (dies with the agent) → <c>sh</c> that
/// checks the agent is still its parent, writes its own pid into the copy's cgroup(s), so everything after it is
/// limited from the first instruction, and opens the seccomp filter for bwrap → <c>setpriv</c> dropping to the copy's
/// own user (when the agent is root) → <c>bwrap</c> or <c>setsid</c> → <c>sh</c> that sets RLIMIT_NPROC (in bwrap's
/// user namespace the count is the copy's alone; for a plain process only with a uid of its own) and RLIMIT_FSIZE,
/// starts the in-sandbox port forwarder (agents that are not root), applies RLIMIT_AS when there is no cgroup, and execs
/// the command (or, for a plain process, supervises it so its children die with the agent too). Every program in the
/// chain is named by absolute path: the workload's own PATH cannot put another in its place. Environment: only what the
/// spec sets plus PATH, HOME and the <c>COINOP_*</c> variables.
/// </summary>
internal sealed class LaunchChain(LocalSandboxOptions options, string setpriv, string? setsid, string? env, string? bwrap, string prlimit, string? dotnetHost, bool root)
{
    public const string SandboxWorkDir = "/work";
    public const string SandboxStateDir = "/state";
    public const string SandboxBridgeDir = "/run/coinop-bridge";
    public const string SandboxBinDir = "/run/coinop-bin";
    public const string SocketName = "port.sock";

    /// <summary>The descriptor bwrap reads the seccomp filter from, opened by the launch script.</summary>
    private const string SeccompFd = "3";

    // $1 agent pid, $2 cgroup.procs files ("-" for none), $3 seccomp filter file ("-" for none), $4 "--", then the
    // rest of the chain.
    private const string LaunchScript =
        "[ \"$PPID\" = \"$1\" ] || exit 125\n" +
        "for f in $2; do [ \"$f\" = - ] || echo $$ > \"$f\" || exit 126; done\n" +
        "if [ \"$3\" != - ]; then exec 3<\"$3\" || exit 126; fi\n" +
        "shift 4\n" +
        "exec \"$@\"\n";

    // $1 RLIMIT_AS in KiB or "-", $2 dotnet host or "-", $3 port or "-", $4 supervise (1/0), $5 prlimit, $6
    // RLIMIT_NPROC or "-", $7 RLIMIT_FSIZE in bytes, $8 "--", then the command. The forwarder starts before the
    // address-space limit, which would stop the .NET runtime from reserving its heap. A plain process has no pid
    // namespace to take its children down with it, so there the shell stays as a supervisor: its parent-death signal
    // is SIGHUP, on which it SIGKILLs its whole process group.
    private const string WorkloadScript =
        "mem=$1 host=$2 port=$3 supervise=$4\n" +
        "if [ \"$6\" != - ]; then \"$5\" --pid $$ --nproc=\"$6:$6\" || exit 126; fi\n" +
        "\"$5\" --pid $$ --fsize=\"$7:$7\" || exit 126\n" +
        "shift 8\n" +
        "if [ \"$port\" != - ]; then DOTNET_EnableDiagnostics=0 \"$host\" " + SandboxBinDir + "/coinop-sandbox-bridge.dll \"$port\" " +
        SandboxBridgeDir + "/" + SocketName + " </dev/null >/dev/null 2>&1 & fi\n" +
        "if [ \"$mem\" != - ]; then ulimit -v \"$mem\" || exit 126; fi\n" +
        "if [ \"$supervise\" = 1 ]; then\n" +
        "  trap 'kill -KILL 0' HUP\n" +
        "  \"$@\" &\n" +
        "  wait $!\n" +
        "  exit $?\n" +
        "fi\n" +
        "exec \"$@\"\n";

    private static readonly string[] BridgeFiles = [".dll", ".runtimeconfig.json", ".deps.json"];

    public bool Bubblewrap => bwrap is not null;

    /// <summary>
    /// Whether a copy with a port needs the forwarder inside its sandbox: bubblewrap run by an agent that is not root (a
    /// root agent connects from inside the copy's network namespace itself, <see cref="Bridge.NetworkNamespace"/>).
    /// </summary>
    public bool InSandboxForwarder => bwrap is not null && !root;

    /// <summary>Where a copy's seccomp filter is kept: the agent's own folder of the copy, which the copy never sees.</summary>
    public static string SeccompFile(CopyFolders folders) => Path.Combine(folders.AgentOnly, "seccomp.bpf");

    private bool Seccomp => bwrap is not null && SeccompFilter.Supported;

    /// <summary>Writes what the chain reads before the copy starts (the seccomp filter).</summary>
    public void Prepare(CopyFolders folders)
    {
        if (Seccomp)
        {
            File.WriteAllBytes(SeccompFile(folders), SeccompFilter.Program());
        }
    }

    public ProcessStartInfo StartInfo(SandboxLaunch launch, CopyCgroup? cgroup)
    {
        var spec = launch.Spec;
        var folders = launch.Folders;
        var forwarder = InSandboxForwarder && spec.Port is not null;
        var info = new ProcessStartInfo(setpriv)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = folders.Work,
        };
        info.Environment.Clear();
        foreach (var (key, value) in Environment(launch))
        {
            info.Environment[key] = value;
        }

        List<string> argv = ["--pdeathsig", "SIGKILL", "--", "/bin/sh", "-c", LaunchScript, "coinop-launch",
            System.Environment.ProcessId.ToString(CultureInfo.InvariantCulture),
            cgroup is null ? "-" : string.Join(' ', cgroup.ProcsFiles), Seccomp ? SeccompFile(folders) : "-", "--", setpriv];
        if (root)
        {
            var uid = folders.Uid ?? throw new InvalidOperationException("a root agent runs each copy as a uid of its own");
            var gid = folders.Gid ?? uid;
            argv.AddRange(["--reuid", Num(uid), "--regid", Num(gid), "--clear-groups"]);
        }

        argv.AddRange(["--pdeathsig", bwrap is null ? "SIGHUP" : "SIGKILL", "--"]);
        if (bwrap is not null)
        {
            argv.Add(bwrap);
            argv.AddRange(BubblewrapArgs(launch, forwarder));
            argv.Add("--");
        }
        else
        {
            // The supervisor's parent-death signal is SIGHUP, which it traps. An agent started with SIGHUP ignored (nohup,
            // some service managers) passes that on, and a shell cannot trap a signal ignored on entry: the copy would
            // outlive its agent. coreutils' env puts SIGHUP back to its default first.
            argv.AddRange([setsid!, env!, "--default-signal=HUP"]);
        }

        argv.AddRange(["/bin/sh", "-c", WorkloadScript, "coinop-workload",
            cgroup is null ? Num(spec.MemoryMb * 1024) : "-",
            forwarder ? dotnetHost! : "-",
            forwarder ? Num(spec.Port!.Value) : "-",
            bwrap is null ? "1" : "0",
            prlimit,
            // Only a user namespace (bwrap) or a uid of its own makes the process count the copy's alone.
            bwrap is not null || root ? Num(options.Limits.MaxProcesses) : "-",
            Num(options.Limits.DiskBytes),
            "--", spec.Command, .. spec.Args]);
        foreach (var a in argv)
        {
            info.ArgumentList.Add(a);
        }

        return info;
    }

    /// <summary>The agent's end of the in-sandbox forwarder: a socket in the agent's own folder, bound read-only into the sandbox.</summary>
    public static string ForwarderFolder(CopyFolders folders) => Path.Combine(folders.AgentOnly, "bridge");

    private List<string> BubblewrapArgs(SandboxLaunch launch, bool forwarder)
    {
        List<string> a = ["--unshare-user", "--disable-userns", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--hostname", "coinop", "--die-with-parent", "--new-session", "--cap-drop", "ALL"];
        if (Seccomp)
        {
            a.AddRange(["--seccomp", SeccompFd]);
        }

        foreach (var path in options.ReadOnlyPaths)
        {
            var info = new DirectoryInfo(path);
            if (info.LinkTarget is { } target)
            {
                a.AddRange(["--symlink", target, path]);
            }
            else if (info.Exists)
            {
                a.AddRange(["--ro-bind", path, path]);
            }
        }

        a.AddRange(["--proc", "/proc", "--dev", "/dev", "--size", Num(options.Limits.TmpBytes), "--tmpfs", "/tmp", "--bind", launch.Folders.Work, SandboxWorkDir, "--chdir", SandboxWorkDir]);
        if (launch.Folders.State is { } state)
        {
            a.AddRange(["--bind", state, SandboxStateDir]);
        }

        if (forwarder)
        {
            var dotnetRoot = Path.GetDirectoryName(dotnetHost!)!;
            if (!options.ReadOnlyPaths.Any(p => dotnetRoot.StartsWith(p.TrimEnd('/') + "/", StringComparison.Ordinal)))
            {
                a.AddRange(["--ro-bind", dotnetRoot, dotnetRoot]);
            }

            // Read-only: the copy cannot put anything in place of the agent's socket (the agent never dials it anyway).
            a.AddRange(["--ro-bind", ForwarderFolder(launch.Folders), SandboxBridgeDir]);
            var stem = Path.ChangeExtension(options.BridgeAssembly, null);
            foreach (var file in BridgeFiles.Select(ext => stem + ext).Where(File.Exists))
            {
                a.AddRange(["--ro-bind", file, SandboxBinDir + "/" + Path.GetFileName(file)]);
            }
        }

        // bwrap's root is a tmpfs holding the mount points; nothing else should be written there.
        a.AddRange(["--remount-ro", "/"]);
        return a;
    }

    private Dictionary<string, string> Environment(SandboxLaunch launch)
    {
        var spec = launch.Spec;
        var inside = bwrap is not null;
        var env = new Dictionary<string, string>(spec.Env, StringComparer.Ordinal)
        {
            ["PATH"] = spec.Env.TryGetValue("PATH", out var path) ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            ["HOME"] = inside ? SandboxWorkDir : launch.Folders.Work,
            ["COINOP_WORKLOAD_ID"] = spec.WorkloadId,
            ["COINOP_EPOCH"] = Num(spec.Epoch),
            ["COINOP_WORK_DIR"] = inside ? SandboxWorkDir : launch.Folders.Work,
        };
        if (launch.Folders.State is { } state)
        {
            env["COINOP_STATE_DIR"] = inside ? SandboxStateDir : state;
        }

        if (spec.Port is { } port)
        {
            env["COINOP_PORT"] = Num(port);
            env["COINOP_ACCESS_TOKEN"] = spec.AccessCredential ?? "";
        }

        return env;
    }

    private static string Num(long n) => n.ToString(CultureInfo.InvariantCulture);
}
