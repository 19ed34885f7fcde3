using System.Globalization;
using Coinop.Provider.Workloads.Bridge;
using Coinop.Provider.Workloads.Limits;
using Coinop.Provider.Workloads.Metering;
using Docker.DotNet;
using Docker.DotNet.Models;
using Microsoft.Extensions.Logging;

namespace Coinop.Provider.Workloads.Sandboxes;

/// <summary>
/// Runs copies as Docker containers through the Engine API: CPU, memory and process limits by the daemon's cgroups,
/// network <c>none</c> (nothing published: a root agent reaches the workload's port by creating its socket inside the
/// container's network namespace, behind the credentialed port bridge), or with <c>--workload-egress</c> a network of its
/// own whose containers cannot reach each other; a read-only root with the work and state folders bound in, a
/// size-limited /tmp, no capabilities, no new privileges, Docker's default seccomp profile, and with a root agent a uid
/// per copy. A container does not
/// die with the agent by itself, so its entrypoint keeps the agent's attached stdin open and kills everything when it
/// closes (the agent died or detached). Only usable where a daemon answers; it cannot be exercised on machines
/// without one, where selecting it fails at start with one clear message.
/// </summary>
public sealed partial class DockerSandbox : ISandbox
{
    public const string SandboxWorkDir = "/work";
    public const string SandboxStateDir = "/state";

    // $@ is the command. The watcher ends the copy when the agent's stdin closes; SIGTERM from "docker stop" is passed
    // on to the command, which pid 1 would otherwise ignore.
    private const string EntrypointScript =
        "\"$@\" & c=$!\n" +
        "trap 'kill -TERM $c' TERM\n" +
        "(cat >/dev/null; kill -KILL -1) &\n" +
        "wait $c; s=$?\n" +
        "if [ $s -gt 128 ] && kill -0 $c 2>/dev/null; then wait $c; s=$?; fi\n" +
        "exit $s\n";

    private readonly DockerClient _client;
    private readonly DockerSandboxOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly CopyUsers _users;

    private DockerSandbox(DockerClient client, DockerSandboxOptions options, TimeProvider time, ILogger logger)
    {
        _client = client;
        _options = options;
        _time = time;
        _logger = logger;
        _users = new CopyUsers(options.Limits.FirstCopyUid, options.Limits.CopyUidCount);
    }

    public string Kind => "docker";

    public string Isolation => "docker";

    public bool ApproximateLimits => false;

    public bool Egress => _options.Egress;

    public Task<CopyFolders> PrepareAsync(CopySpec spec, string root, CancellationToken cancellationToken) =>
        Task.FromResult(LocalSandbox.PrepareFolders(spec, root, LinuxNative.IsRoot ? _users : null, _options.Limits));

    /// <summary>The network of copies with egress (pure mapping): a bridge with inter-container traffic off.</summary>
    public static NetworksCreateParameters EgressNetworkFor(DockerSandboxOptions options) => new()
    {
        Name = options.EgressNetwork,
        Driver = "bridge",
        Internal = false,
        Options = new Dictionary<string, string> { ["com.docker.network.bridge.enable_icc"] = "false" },
        Labels = new Dictionary<string, string> { ["coinop.egress"] = "true" },
    };

    /// <summary>Connects to the daemon and pings it; throws <see cref="SandboxException"/> when none answers.</summary>
    public static async Task<DockerSandbox> CreateAsync(DockerSandboxOptions options, TimeProvider time, ILogger logger, CancellationToken cancellationToken)
    {
        options.Limits.Validate();
        if (options.Endpoint.Scheme == "unix" && !Path.Exists(options.Endpoint.LocalPath))
        {
            throw new SandboxException(Unreachable(options.Endpoint, "no socket at " + options.Endpoint.LocalPath));
        }

        var client = new DockerClientConfiguration(options.Endpoint).CreateClient();
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(5));
            await client.System.PingAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            client.Dispose();
            throw new SandboxException(Unreachable(options.Endpoint, ex.Message), ex);
        }

        if (options.Egress)
        {
            await EnsureEgressNetworkAsync(client, options, cancellationToken).ConfigureAwait(false);
        }

        return new DockerSandbox(client, options, time, logger);
    }

    /// <summary>The container a copy runs in (pure mapping from the request).</summary>
    public static CreateContainerParameters ContainerFor(SandboxLaunch launch, DockerSandboxOptions options)
    {
        var spec = launch.Spec;
        var env = new Dictionary<string, string>(spec.Env, StringComparer.Ordinal)
        {
            ["HOME"] = SandboxWorkDir,
            ["COINOP_WORKLOAD_ID"] = spec.WorkloadId,
            ["COINOP_EPOCH"] = spec.Epoch.ToString(CultureInfo.InvariantCulture),
            ["COINOP_WORK_DIR"] = SandboxWorkDir,
        };
        List<string> binds = [$"{launch.Folders.Work}:{SandboxWorkDir}:rw"];
        if (launch.Folders.State is { } state)
        {
            env["COINOP_STATE_DIR"] = SandboxStateDir;
            binds.Add($"{state}:{SandboxStateDir}:rw");
        }

        var limits = options.Limits;
        var memory = spec.MemoryMb * 1024 * 1024;
        var host = new HostConfig
        {
            NanoCPUs = (long)Math.Round(spec.CpuCores * 1e9),
            Memory = memory,
            // Equal to the memory limit: no swap on top of it.
            MemorySwap = memory,
            // No network at all (the port is reached from inside its namespace), or egress on a network of copies only.
            NetworkMode = options.Egress ? options.EgressNetwork : "none",
            Binds = binds,
            ReadonlyRootfs = true,
            Tmpfs = new Dictionary<string, string> { ["/tmp"] = "rw,nosuid,nodev,size=" + limits.TmpBytes.ToString(CultureInfo.InvariantCulture) },
            CapDrop = ["ALL"],
            // Docker's default seccomp profile applies (it is not turned off), which also refuses new user namespaces.
            SecurityOpt = ["no-new-privileges"],
            PidsLimit = limits.MaxProcesses,
            // A single file cannot outgrow the disk cap even between two measurements.
            Ulimits = [new Ulimit { Name = "fsize", Soft = limits.DiskBytes, Hard = limits.DiskBytes }],
        };
        var parameters = new CreateContainerParameters
        {
            Name = $"coinop-{spec.WorkloadId}-e{spec.Epoch}",
            Image = spec.Image ?? options.DefaultImage,
            Entrypoint = ["/bin/sh", "-c", EntrypointScript, "coinop-entry"],
            Cmd = [spec.Command, .. spec.Args],
            Env = [.. env.Select(kv => $"{kv.Key}={kv.Value}")],
            WorkingDir = SandboxWorkDir,
            User = launch.Folders.Uid is { } uid ? $"{uid}:{launch.Folders.Gid ?? uid}" : options.User,
            Labels = new Dictionary<string, string> { ["coinop.workload"] = spec.WorkloadId, ["coinop.epoch"] = spec.Epoch.ToString(CultureInfo.InvariantCulture) },
            AttachStdin = true,
            OpenStdin = true,
            StdinOnce = true,
            AttachStdout = true,
            AttachStderr = true,
            Tty = false,
            HostConfig = host,
        };
        if (spec.Port is { } port)
        {
            // Nothing is published: a published port would be reachable without the access credential.
            env["COINOP_PORT"] = port.ToString(CultureInfo.InvariantCulture);
            env["COINOP_ACCESS_TOKEN"] = spec.AccessCredential ?? "";
            parameters.Env = [.. env.Select(kv => $"{kv.Key}={kv.Value}")];
        }

        return parameters;
    }

    public async Task<IRunningCopy> StartAsync(SandboxLaunch launch, CancellationToken cancellationToken)
    {
        if (launch.Spec.Validate() is { } problem)
        {
            throw new SandboxException(problem);
        }

        if (launch.Spec.Port is not null && !LinuxNative.IsRoot)
        {
            // The container has no published port; only a root agent can open a socket inside its namespace.
            throw new SandboxException("a docker copy's port is reached inside the container's network namespace, which needs the agent to run as root; run it as root or use --workloads process");
        }

        try
        {
            var created = await _client.Containers.CreateContainerAsync(ContainerFor(launch, _options), cancellationToken).ConfigureAwait(false);
            var stream = await _client.Containers.AttachContainerAsync(created.ID, false,
                new ContainerAttachParameters { Stream = true, Stdin = true, Stdout = true, Stderr = true }, cancellationToken).ConfigureAwait(false);
            await _client.Containers.StartContainerAsync(created.ID, new ContainerStartParameters(), cancellationToken).ConfigureAwait(false);
            var inspect = await _client.Containers.InspectContainerAsync(created.ID, cancellationToken).ConfigureAwait(false);
            var pid = (int)inspect.State.Pid;
            var port = new CopyPort(launch.Spec.Port, pid, ProcFs.ReadStat(pid)?.StartTicks ?? -1, TimeSpan.FromSeconds(10), _time);
            LogStarted(_logger, launch.Spec.WorkloadId, launch.Spec.Epoch, created.ID);
            var copy = DockerCopy.Run(_client, created.ID, pid, stream, port, _time, _options.SampleInterval);
            DiskWatch.Start(launch.Folders, _options.Limits, copy.Exited, reason => { _ = copy.StopAsync(TimeSpan.Zero, CancellationToken.None); }, _time, _logger);
            return copy;
        }
        catch (DockerApiException ex)
        {
            throw new SandboxException("docker refused the copy: " + ex.Message, ex);
        }
    }

    private static async Task EnsureEgressNetworkAsync(DockerClient client, DockerSandboxOptions options, CancellationToken cancellationToken)
    {
        try
        {
            var existing = await client.Networks.ListNetworksAsync(new NetworksListParameters(), cancellationToken).ConfigureAwait(false);
            if (existing.FirstOrDefault(n => n.Name == options.EgressNetwork) is { } network)
            {
                if (!network.Options.TryGetValue("com.docker.network.bridge.enable_icc", out var icc) || icc != "false")
                {
                    throw new SandboxException($"docker network {options.EgressNetwork} lets containers reach each other; remove it and the agent makes it anew");
                }

                return;
            }

            await client.Networks.CreateNetworkAsync(EgressNetworkFor(options), cancellationToken).ConfigureAwait(false);
        }
        catch (DockerApiException ex)
        {
            throw new SandboxException("docker refused the egress network: " + ex.Message, ex);
        }
    }

    private static string Unreachable(Uri endpoint, string why) =>
        $"--workloads docker needs a reachable Docker daemon at {endpoint} ({why}); start dockerd or use --workloads process";
}
