using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Coinop.Provider.Workloads.Limits;
using Coinop.Provider.Workloads.Metering;
using Microsoft.Extensions.Logging;

namespace Coinop.Provider.Workloads.Sandboxes;

/// <summary>Settings of the local sandboxes (bubblewrap and plain process).</summary>
public sealed class LocalSandboxOptions
{
    /// <summary>When the agent runs as root, copies run as this user (and own their folders), never as root.</summary>
    public int SandboxUid { get; set; } = 65534;

    public int SandboxGid { get; set; } = 65534;

    /// <summary>Host folders bound read-only at the same path inside bubblewrap (symlinks are recreated as symlinks).</summary>
    public IList<string> ReadOnlyPaths { get; } = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc"];

    /// <summary>How often usage is sampled with a cgroup.</summary>
    public TimeSpan SampleInterval { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>How often usage is sampled, and the CPU duty cycle decided, without one.</summary>
    public TimeSpan ThrottleInterval { get; set; } = TimeSpan.FromMilliseconds(50);

    /// <summary>How long a client's connection may wait for the workload's port to come up.</summary>
    public TimeSpan PortConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The in-sandbox port forwarder; by default the one built next to this assembly.</summary>
    public string BridgeAssembly { get; set; } = Path.Combine(AppContext.BaseDirectory, "coinop-sandbox-bridge.dll");

    public void Validate()
    {
        if (SandboxUid < 0 || SandboxGid < 0)
        {
            throw new ArgumentException("The sandbox uid and gid must not be negative.");
        }

        if (SampleInterval <= TimeSpan.Zero || ThrottleInterval <= TimeSpan.Zero || PortConnectTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentException("Sandbox intervals and timeouts must be positive.");
        }
    }
}

/// <summary>
/// Runs copies as local process trees. With bubblewrap, each copy gets its own pid, network, ipc and uts
/// namespaces, a root made of read-only system folders, a private writable <c>/work</c> (and <c>/state</c>), fresh
/// <c>/tmp</c>, <c>/proc</c> and <c>/dev</c>, no capabilities, a new session, and dies with the agent. Without it, a
/// copy is a plain child process in its own session, weaker isolation that is advertised as such.
/// <para>
/// The launch chain: <c>setpriv --pdeathsig SIGKILL</c> (dies with the agent) → <c>sh</c> that checks the agent is
/// still its parent and writes its own pid into the copy's cgroup(s), so everything after it is limited from the
/// first instruction → <c>setpriv</c> dropping to the sandbox user (when the agent is root) → <c>bwrap</c> or
/// <c>setsid</c> → <c>sh</c> that starts the port forwarder, applies RLIMIT_AS when there is no cgroup, and execs
/// the command (or, for a plain process, supervises it so its children die with the agent too). Environment: only what the spec sets plus PATH, HOME and the <c>COINOP_*</c> variables.
/// </para>
/// </summary>
public sealed partial class LocalSandbox : ISandbox
{
    public const string SandboxWorkDir = "/work";
    public const string SandboxStateDir = "/state";
    private const string SandboxBridgeDir = "/run/coinop-bridge";
    private const string SandboxBinDir = "/run/coinop-bin";
    private const string SocketName = "port.sock";

    // $1 agent pid, $2 cgroup.procs files ("-" for none), $3 "--", then the rest of the chain.
    private const string LaunchScript =
        "[ \"$PPID\" = \"$1\" ] || exit 125\n" +
        "for f in $2; do [ \"$f\" = - ] || echo $$ > \"$f\" || exit 126; done\n" +
        "shift 3\n" +
        "exec \"$@\"\n";

    // $1 RLIMIT_AS in KiB or "-", $2 dotnet host or "-", $3 port or "-", $4 supervise (1/0), $5 "--", then the
    // command. The forwarder starts before the address-space limit, which would stop the .NET runtime from reserving
    // its heap. A plain process has no pid namespace to take its children down with it, so there the shell stays as a
    // supervisor: its parent-death signal is SIGHUP, on which it SIGKILLs its whole process group.
    private const string WorkloadScript =
        "mem=$1 host=$2 port=$3 supervise=$4\n" +
        "shift 5\n" +
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

    private readonly LocalSandboxOptions _options;
    private readonly Cgroups _cgroups;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly string _setpriv;
    private readonly string? _setsid;
    private readonly string? _bwrap;
    private readonly string? _dotnetHost;

    private LocalSandbox(LocalSandboxOptions options, Cgroups cgroups, TimeProvider time, ILogger logger, string setpriv, string? setsid, string? bwrap)
    {
        _options = options;
        _cgroups = cgroups;
        _time = time;
        _logger = logger;
        _setpriv = setpriv;
        _setsid = setsid;
        _bwrap = bwrap;
        _dotnetHost = FindDotnetHost();
    }

    public string Kind => _bwrap is null ? "process" : "bubblewrap";

    public string Isolation => _cgroups.Mode == LimitEnforcement.Approximate ? Kind + "+approx-limits" : Kind;

    public LimitEnforcement Limits => _cgroups.Mode;

    /// <summary>Levels of the process tree that are the sandbox's own: bwrap and its init, or the supervising shell.</summary>
    private int WrapperDepth => _bwrap is null ? 1 : 2;

    /// <summary>A plain-process sandbox; throws <see cref="SandboxException"/> when setpriv or setsid is missing.</summary>
    public static LocalSandbox CreateProcess(LocalSandboxOptions options, Cgroups cgroups, TimeProvider time, ILogger logger)
    {
        options.Validate();
        return new LocalSandbox(options, cgroups, time, logger, Require("setpriv"), Require("setsid"), bwrap: null);
    }

    /// <summary>
    /// A bubblewrap sandbox, after a probe that runs <c>true</c> through the exact launch chain real copies use;
    /// throws <see cref="SandboxException"/> with bwrap's own message when that fails.
    /// </summary>
    public static async Task<LocalSandbox> CreateBubblewrapAsync(LocalSandboxOptions options, Cgroups cgroups, TimeProvider time, ILogger logger, CancellationToken cancellationToken)
    {
        options.Validate();
        var bwrap = FindOnPath("bwrap") ?? throw new SandboxException("bubblewrap (bwrap) is not installed");
        var sandbox = new LocalSandbox(options, cgroups, time, logger, Require("setpriv"), setsid: null, bwrap);
        await sandbox.ProbeAsync(cancellationToken).ConfigureAwait(false);
        return sandbox;
    }

    /// <summary>Bubblewrap when it works here, otherwise a plain process (the weaker level), as <c>--workloads process</c> asks.</summary>
    public static async Task<LocalSandbox> SelectAsync(LocalSandboxOptions options, Cgroups cgroups, TimeProvider time, ILogger logger, CancellationToken cancellationToken)
    {
        try
        {
            return await CreateBubblewrapAsync(options, cgroups, time, logger, cancellationToken).ConfigureAwait(false);
        }
        catch (SandboxException ex)
        {
            LogBubblewrapUnavailable(logger, ex.Message);
            return CreateProcess(options, cgroups, time, logger);
        }
    }

    public async Task<IRunningCopy> StartAsync(SandboxLaunch launch, CancellationToken cancellationToken)
    {
        var spec = launch.Spec;
        if (spec.Validate() is { } problem)
        {
            throw new SandboxException(problem);
        }

        var bridge = _bwrap is not null && spec.Port is not null;
        if (bridge && (_dotnetHost is null || !File.Exists(_options.BridgeAssembly) || launch.BridgeDir is null))
        {
            throw new SandboxException($"the port bridge is unavailable (dotnet host {_dotnetHost ?? "not found"}, forwarder {_options.BridgeAssembly})");
        }

        if (bridge && Path.Combine(launch.BridgeDir!, SocketName).Length >= 108)
        {
            throw new SandboxException("the copy's folder path is too long for a unix socket; use a shorter data directory");
        }

        if (LinuxNative.IsRoot)
        {
            foreach (var dir in new[] { launch.WorkDir, launch.StateDir, launch.BridgeDir }.OfType<string>())
            {
                ChownTree(dir, _options.SandboxUid, _options.SandboxGid);
            }
        }

        CopyCgroup? cgroup = null;
        if (_cgroups.Mode != LimitEnforcement.Approximate)
        {
            cgroup = _cgroups.Create(Cgroups.GroupName(spec.WorkloadId, spec.Epoch), spec.CpuCores, spec.MemoryMb * 1024 * 1024, out var error)
                ?? throw new SandboxException("cannot create the copy's cgroup: " + error);
        }

        Process process;
        try
        {
            process = await Spawner.StartAsync(StartInfo(launch, cgroup, bridge)).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            cgroup?.TryRemove();
            throw new SandboxException("cannot start the copy: " + ex.Message, ex);
        }

        // The copy reads nothing from us: end of input at once, rather than the agent's own stdin.
        process.StandardInput.Close();
        var interval = cgroup is null ? _options.ThrottleInterval : _options.SampleInterval;
        LocalCopy? copy = null;
        copy = LocalCopy.Run(process, cgroup, WrapperDepth, spec.CpuCores, ct => ConnectAsync(launch, copy!, ct), _time, interval);
        LogStarted(_logger, spec.WorkloadId, spec.Epoch, Kind, process.Id);
        return copy;
    }

    private async ValueTask<Stream> ConnectAsync(SandboxLaunch launch, LocalCopy copy, CancellationToken cancellationToken)
    {
        var port = launch.Spec.Port ?? throw new InvalidOperationException("The workload declares no port.");
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(_options.PortConnectTimeout);
        while (true)
        {
            var socket = _bwrap is null
                ? new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp)
                : new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                EndPoint endpoint = _bwrap is null
                    ? new IPEndPoint(IPAddress.Loopback, port)
                    : new UnixDomainSocketEndPoint(Path.Combine(launch.BridgeDir!, SocketName));
                await socket.ConnectAsync(endpoint, deadline.Token).ConfigureAwait(false);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch (SocketException) when (!deadline.IsCancellationRequested && !copy.Exited.IsCompleted)
            {
                // Not listening yet (the workload or the forwarder is still starting).
                socket.Dispose();
                await Task.Delay(TimeSpan.FromMilliseconds(50), _time, deadline.Token).ConfigureAwait(false);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }
    }

    private ProcessStartInfo StartInfo(SandboxLaunch launch, CopyCgroup? cgroup, bool bridge)
    {
        var spec = launch.Spec;
        var info = new ProcessStartInfo(_setpriv)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = launch.WorkDir,
        };
        info.Environment.Clear();
        foreach (var (key, value) in Environment(launch))
        {
            info.Environment[key] = value;
        }

        List<string> argv = ["--pdeathsig", "SIGKILL", "--", "/bin/sh", "-c", LaunchScript, "coinop-launch",
            System.Environment.ProcessId.ToString(CultureInfo.InvariantCulture),
            cgroup is null ? "-" : string.Join(' ', cgroup.ProcsFiles), "--", _setpriv];
        if (LinuxNative.IsRoot)
        {
            argv.AddRange(["--reuid", Num(_options.SandboxUid), "--regid", Num(_options.SandboxGid), "--clear-groups"]);
        }

        argv.AddRange(["--pdeathsig", _bwrap is null ? "SIGHUP" : "SIGKILL", "--"]);
        if (_bwrap is not null)
        {
            argv.Add(_bwrap);
            argv.AddRange(BubblewrapArgs(launch, bridge));
            argv.Add("--");
        }
        else
        {
            argv.Add(_setsid!);
        }

        argv.AddRange(["/bin/sh", "-c", WorkloadScript, "coinop-workload",
            cgroup is null ? Num(spec.MemoryMb * 1024) : "-",
            bridge ? _dotnetHost! : "-",
            bridge ? Num(spec.Port!.Value) : "-",
            _bwrap is null ? "1" : "0",
            "--", spec.Command, .. spec.Args]);
        foreach (var a in argv)
        {
            info.ArgumentList.Add(a);
        }

        return info;
    }

    private List<string> BubblewrapArgs(SandboxLaunch launch, bool bridge)
    {
        List<string> a = ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--hostname", "coinop", "--die-with-parent", "--new-session", "--cap-drop", "ALL"];
        foreach (var path in _options.ReadOnlyPaths)
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

        a.AddRange(["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--bind", launch.WorkDir, SandboxWorkDir, "--chdir", SandboxWorkDir]);
        if (launch.StateDir is not null)
        {
            a.AddRange(["--bind", launch.StateDir, SandboxStateDir]);
        }

        if (bridge)
        {
            var root = Path.GetDirectoryName(_dotnetHost!)!;
            if (!_options.ReadOnlyPaths.Any(p => root.StartsWith(p.TrimEnd('/') + "/", StringComparison.Ordinal)))
            {
                a.AddRange(["--ro-bind", root, root]);
            }

            a.AddRange(["--bind", launch.BridgeDir!, SandboxBridgeDir]);
            var stem = Path.ChangeExtension(_options.BridgeAssembly, null);
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
        var inside = _bwrap is not null;
        var env = new Dictionary<string, string>(spec.Env, StringComparer.Ordinal)
        {
            ["PATH"] = spec.Env.TryGetValue("PATH", out var path) ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            ["HOME"] = inside ? SandboxWorkDir : launch.WorkDir,
            ["COINOP_WORKLOAD_ID"] = spec.WorkloadId,
            ["COINOP_EPOCH"] = Num(spec.Epoch),
            ["COINOP_WORK_DIR"] = inside ? SandboxWorkDir : launch.WorkDir,
        };
        if (launch.StateDir is not null)
        {
            env["COINOP_STATE_DIR"] = inside ? SandboxStateDir : launch.StateDir;
        }

        if (spec.Port is { } port)
        {
            env["COINOP_PORT"] = Num(port);
            env["COINOP_ACCESS_TOKEN"] = spec.AccessCredential ?? "";
        }

        return env;
    }

    private async Task ProbeAsync(CancellationToken cancellationToken)
    {
        var dir = Path.Combine(Path.GetTempPath(), "coinop-bwrap-probe-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var spec = new CopySpec("probe", 0, "true", [], new Dictionary<string, string>(), 1, 64);
            using var process = await Spawner.StartAsync(StartInfo(new SandboxLaunch(spec, dir, null, null), null, bridge: false)).ConfigureAwait(false);
            process.StandardInput.Close();
            var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(30));
            await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
            if (process.ExitCode != 0)
            {
                throw new SandboxException($"bubblewrap does not work here (exit {process.ExitCode}): {(await stderr.ConfigureAwait(false)).Trim()}");
            }
        }
        catch (Exception ex) when (ex is not SandboxException and not OperationCanceledException || ex is OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            throw new SandboxException("bubblewrap does not work here: " + ex.Message, ex);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>The dotnet host that runs this process's runtime (the forwarder needs the same runtime).</summary>
    private static string? FindDotnetHost()
    {
        var root = Path.GetFullPath(Path.Combine(RuntimeEnvironment.GetRuntimeDirectory(), "..", "..", ".."));
        var host = Path.Combine(root, "dotnet");
        return File.Exists(host) ? host : null;
    }

    private static void ChownTree(string dir, int uid, int gid)
    {
        LinuxNative.ChangeOwner(dir, uid, gid);
        foreach (var entry in Directory.EnumerateFileSystemEntries(dir, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }))
        {
            LinuxNative.ChangeOwner(entry, uid, gid);
        }
    }

    private static string Require(string tool) =>
        FindOnPath(tool) ?? throw new SandboxException($"'{tool}' (util-linux) is not installed; copies could not be tied to the agent's life");

    private static string? FindOnPath(string tool) =>
        (System.Environment.GetEnvironmentVariable("PATH") ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            .Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, tool))
            .FirstOrDefault(File.Exists);

    private static string Num(long n) => n.ToString(CultureInfo.InvariantCulture);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Bubblewrap is unavailable, workloads run as plain processes (weaker isolation): {Reason}")]
    private static partial void LogBubblewrapUnavailable(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Workload {WorkloadId} epoch {Epoch} started in {Sandbox} as pid {Pid}")]
    private static partial void LogStarted(ILogger logger, string workloadId, long epoch, string sandbox, int pid);
}
