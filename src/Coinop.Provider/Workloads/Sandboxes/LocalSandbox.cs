using System.Diagnostics;
using System.Runtime.InteropServices;
using Coinop.Provider.Workloads.Bridge;
using Coinop.Provider.Workloads.Limits;
using Coinop.Provider.Workloads.Metering;
using Microsoft.Extensions.Logging;

namespace Coinop.Provider.Workloads.Sandboxes;

/// <summary>Settings of the local sandboxes (bubblewrap and plain process).</summary>
public sealed class LocalSandboxOptions
{
    /// <summary>Host folders bound read-only at the same path inside bubblewrap (symlinks are recreated as symlinks).</summary>
    public IList<string> ReadOnlyPaths { get; } = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc"];

    /// <summary>How often usage is sampled with a cgroup.</summary>
    public TimeSpan SampleInterval { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>How often usage is sampled, and the CPU duty cycle decided, without one.</summary>
    public TimeSpan ThrottleInterval { get; set; } = TimeSpan.FromMilliseconds(50);

    /// <summary>How long a client's connection may wait for the workload's port to come up.</summary>
    public TimeSpan PortConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Process, /tmp and disk caps of each copy, and the uid range of a root agent.</summary>
    public CopyLimits Limits { get; set; } = new();

    /// <summary>The in-sandbox port forwarder; by default the one built next to this assembly.</summary>
    public string BridgeAssembly { get; set; } = Path.Combine(AppContext.BaseDirectory, "coinop-sandbox-bridge.dll");

    public void Validate()
    {
        if (SampleInterval <= TimeSpan.Zero || ThrottleInterval <= TimeSpan.Zero || PortConnectTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentException("Sandbox intervals and timeouts must be positive.");
        }

        Limits.Validate();
    }
}

/// <summary>
/// Runs copies as local process trees. With bubblewrap, each copy gets its own pid, network, ipc and uts
/// namespaces, a root made of read-only system folders, a private writable <c>/work</c> (and <c>/state</c>), fresh
/// <c>/tmp</c>, <c>/proc</c> and <c>/dev</c>, no capabilities, a new session, no further user namespaces, a seccomp
/// filter, a process cap, a disk cap (<see cref="DiskWatch"/>), and dies with the agent; a root agent gives each copy
/// its own uid. Without it (only
/// when the operator accepts it with <c>--unsafe-no-sandbox</c>), a copy is a plain child process in its own session:
/// isolation <c>none</c>, advertised as such. The command line is <see cref="LaunchChain"/>'s.
/// </summary>
public sealed partial class LocalSandbox : ISandbox
{
    public const string SandboxWorkDir = LaunchChain.SandboxWorkDir;
    public const string SandboxStateDir = LaunchChain.SandboxStateDir;

    private static readonly TimeSpan ConnectRetry = TimeSpan.FromMilliseconds(50);

    private readonly LocalSandboxOptions _options;
    private readonly Cgroups _cgroups;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly LaunchChain _chain;
    private readonly string? _dotnetHost;
    private readonly bool _root;
    private readonly CopyUsers _users;

    private LocalSandbox(LocalSandboxOptions options, Cgroups cgroups, TimeProvider time, ILogger logger, string setpriv, string? setsid, string? bwrap)
    {
        _options = options;
        _cgroups = cgroups;
        _time = time;
        _logger = logger;
        _dotnetHost = FindDotnetHost();
        _root = LinuxNative.IsRoot;
        _users = new CopyUsers(options.Limits.FirstCopyUid, options.Limits.CopyUidCount);
        _chain = new LaunchChain(options, setpriv, setsid, setsid is null ? null : FindOnPath("env") ?? "/usr/bin/env", bwrap, Require("prlimit"), _dotnetHost, _root);
    }

    public string Kind => _chain.Bubblewrap ? "bubblewrap" : "none";

    public string Isolation => Kind;

    public bool ApproximateLimits => _cgroups.Mode == LimitEnforcement.Approximate;

    /// <summary>
    /// A bubblewrap copy has only its own loopback; a plain process (isolation <c>none</c>) has whatever the host has,
    /// which is advertised as egress too.
    /// </summary>
    public bool Egress => !_chain.Bubblewrap;

    public LimitEnforcement Limits => _cgroups.Mode;

    /// <summary>Levels of the process tree that are the sandbox's own: bwrap and its init, or the supervising shell.</summary>
    private int WrapperDepth => _chain.Bubblewrap ? 2 : 1;

    /// <summary>A plain-process sandbox (isolation <c>none</c>); throws <see cref="SandboxException"/> when setpriv or setsid is missing.</summary>
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

    /// <summary>
    /// Bubblewrap, as <c>--workloads process</c> asks. When it does not work here the provider refuses workloads (a
    /// <see cref="SandboxException"/> that says why) unless <paramref name="allowUnsandboxed"/> (<c>--unsafe-no-sandbox</c>):
    /// then copies run as plain processes with isolation <c>none</c>, which the market shows to consumers.
    /// </summary>
    public static async Task<LocalSandbox> SelectAsync(LocalSandboxOptions options, Cgroups cgroups, bool allowUnsandboxed, TimeProvider time, ILogger logger, CancellationToken cancellationToken)
    {
        try
        {
            return await CreateBubblewrapAsync(options, cgroups, time, logger, cancellationToken).ConfigureAwait(false);
        }
        catch (SandboxException ex) when (allowUnsandboxed)
        {
            LogBubblewrapUnavailable(logger, ex.Message);
            return CreateProcess(options, cgroups, time, logger);
        }
        catch (SandboxException ex)
        {
            throw new SandboxException(ex.Message + "; the provider refuses workloads without a working sandbox " +
                "(install bubblewrap, or pass --unsafe-no-sandbox to run them as plain processes with isolation 'none')", ex);
        }
    }

    public Task<CopyFolders> PrepareAsync(CopySpec spec, string root, CancellationToken cancellationToken) =>
        Task.FromResult(PrepareFolders(spec, root, _root ? _users : null, _options.Limits));

    /// <summary>
    /// The copy's folders: owned by a uid of its own leased from <paramref name="users"/> (a root agent; given back when
    /// the folders go), else by the agent's user; restores into them are capped at the disk cap.
    /// </summary>
    internal static CopyFolders PrepareFolders(CopySpec spec, string root, CopyUsers? users, CopyLimits limits)
    {
        if (users is null)
        {
            return CopyFolders.CreatePlain(root, spec.WantsStateDir, null, null, limits.DiskBytes);
        }

        var uid = users.Lease() ?? throw new SandboxException("every uid of the copy range is in use; the provider runs too many copies");
        try
        {
            return CopyFolders.CreatePlain(root, spec.WantsStateDir, uid, uid, limits.DiskBytes, () =>
            {
                users.Return(uid);
                return ValueTask.CompletedTask;
            });
        }
        catch
        {
            users.Return(uid);
            throw;
        }
    }

    public async Task<IRunningCopy> StartAsync(SandboxLaunch launch, CancellationToken cancellationToken)
    {
        var spec = launch.Spec;
        if (spec.Validate() is { } problem)
        {
            throw new SandboxException(problem);
        }

        var forwarder = _chain.InSandboxForwarder && spec.Port is not null;
        if (forwarder && (_dotnetHost is null || !File.Exists(_options.BridgeAssembly)))
        {
            throw new SandboxException($"the port bridge is unavailable (dotnet host {_dotnetHost ?? "not found"}, forwarder {_options.BridgeAssembly})");
        }

        DialBackListener? listener = null;
        if (forwarder)
        {
            var folder = Posix.CreatePrivateDirectory(LaunchChain.ForwarderFolder(launch.Folders));
            var socket = Path.Combine(folder, LaunchChain.SocketName);
            if (socket.Length >= 108)
            {
                throw new SandboxException("the copy's folder path is too long for a unix socket; use a shorter data directory");
            }

            listener = DialBackListener.Start(socket);
        }

        CopyCgroup? cgroup = null;
        if (_cgroups.Mode != LimitEnforcement.Approximate)
        {
            // The group also holds the sandbox's own processes (launcher, bwrap, its init): they get a little room.
            cgroup = _cgroups.Create(Cgroups.GroupName(spec.WorkloadId, spec.Epoch), spec.CpuCores, spec.MemoryMb * 1024 * 1024, out var error,
                _options.Limits.MaxProcesses + 8);
            if (cgroup is null)
            {
                listener?.Dispose();
                throw new SandboxException("cannot create the copy's cgroup: " + error);
            }
        }

        Process process;
        try
        {
            _chain.Prepare(launch.Folders);
            process = await Spawner.StartAsync(_chain.StartInfo(launch, cgroup)).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            cgroup?.TryRemove();
            listener?.Dispose();
            throw new SandboxException("cannot start the copy: " + ex.Message, ex);
        }

        // The copy reads nothing from us: end of input at once, rather than the agent's own stdin.
        process.StandardInput.Close();
        var interval = cgroup is null ? _options.ThrottleInterval : _options.SampleInterval;
        var port = new CopyPort(spec.Port, process.Id, listener, _chain.Bubblewrap, _options.PortConnectTimeout, _time);
        LocalCopy? copy = null;
        copy = LocalCopy.Run(process, cgroup, WrapperDepth, spec.CpuCores, ct => port.ConnectAsync(copy!.Exited, ct), _time, interval, port);
        DiskWatch.Start(launch.Folders, _options.Limits, copy.Exited, copy.Kill, _time, _logger);
        LogStarted(_logger, spec.WorkloadId, spec.Epoch, Kind, process.Id);
        return copy;
    }

    private async Task ProbeAsync(CancellationToken cancellationToken)
    {
        var dir = Path.Combine(Path.GetTempPath(), "coinop-bwrap-probe-" + Guid.NewGuid().ToString("N"));
        var spec = new CopySpec("probe", 0, "true", [], new Dictionary<string, string>(), 1, 64);
        var folders = await PrepareAsync(spec, dir, cancellationToken).ConfigureAwait(false);
        try
        {
            _chain.Prepare(folders);
            using var process = await Spawner.StartAsync(_chain.StartInfo(new SandboxLaunch(spec, folders), null)).ConfigureAwait(false);
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
            await folders.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>The dotnet host that runs this process's runtime (the forwarder needs the same runtime).</summary>
    private static string? FindDotnetHost()
    {
        var root = Path.GetFullPath(Path.Combine(RuntimeEnvironment.GetRuntimeDirectory(), "..", "..", ".."));
        var host = Path.Combine(root, "dotnet");
        return File.Exists(host) ? host : null;
    }

    private static string Require(string tool) =>
        FindOnPath(tool) ?? throw new SandboxException($"'{tool}' (util-linux) is not installed; copies could not be tied to the agent's life");

    private static string? FindOnPath(string tool) =>
        (System.Environment.GetEnvironmentVariable("PATH") ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            .Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, tool))
            .FirstOrDefault(File.Exists);
}
