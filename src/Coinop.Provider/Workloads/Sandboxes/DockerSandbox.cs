using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Docker.DotNet;
using Docker.DotNet.Models;
using Microsoft.Extensions.Logging;

namespace Coinop.Provider.Workloads.Sandboxes;

/// <summary>Settings of the docker sandbox.</summary>
public sealed class DockerSandboxOptions
{
    /// <summary>The Docker Engine API endpoint.</summary>
    public Uri Endpoint { get; set; } = new("unix:///var/run/docker.sock");

    /// <summary>The image a workload runs in when its spec names none; it needs /bin/sh and cat.</summary>
    public string DefaultImage { get; set; } = "debian:bookworm-slim";

    /// <summary>The user copies run as inside their container.</summary>
    public string User { get; set; } = "65534:65534";

    public TimeSpan SampleInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Copies may reach the internet (<c>--workload-egress</c>); by default they have no network but their port's bridge.</summary>
    public bool Egress { get; set; }
}

/// <summary>
/// Runs copies as Docker containers through the Engine API: CPU and memory limits by the daemon's cgroups, no
/// network unless the workload has a port (then the default bridge with the port published on 127.0.0.1 only), a
/// read-only root with the work and state folders bound in, no capabilities, no new privileges. A container does not
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

    private DockerSandbox(DockerClient client, DockerSandboxOptions options, TimeProvider time, ILogger logger)
    {
        _client = client;
        _options = options;
        _time = time;
        _logger = logger;
    }

    public string Kind => "docker";

    public string Isolation => "docker";

    public bool ApproximateLimits => false;

    public bool Egress => _options.Egress;

    public Task<CopyFolders> PrepareAsync(CopySpec spec, string root, CancellationToken cancellationToken) =>
        Task.FromResult(CopyFolders.CreatePlain(root, spec.WantsStateDir, Metering.LinuxNative.IsRoot ? 65534 : null, Metering.LinuxNative.IsRoot ? 65534 : null));

    /// <summary>Connects to the daemon and pings it; throws <see cref="SandboxException"/> when none answers.</summary>
    public static async Task<DockerSandbox> CreateAsync(DockerSandboxOptions options, TimeProvider time, ILogger logger, CancellationToken cancellationToken)
    {
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

        var memory = spec.MemoryMb * 1024 * 1024;
        var host = new HostConfig
        {
            NanoCPUs = (long)Math.Round(spec.CpuCores * 1e9),
            Memory = memory,
            // Equal to the memory limit: no swap on top of it.
            MemorySwap = memory,
            NetworkMode = spec.Port is null ? "none" : "bridge",
            Binds = binds,
            ReadonlyRootfs = true,
            Tmpfs = new Dictionary<string, string> { ["/tmp"] = "rw,nosuid,nodev,size=64m" },
            CapDrop = ["ALL"],
            SecurityOpt = ["no-new-privileges"],
            PidsLimit = 4096,
        };
        var parameters = new CreateContainerParameters
        {
            Name = $"coinop-{spec.WorkloadId}-e{spec.Epoch}",
            Image = spec.Image ?? options.DefaultImage,
            Entrypoint = ["/bin/sh", "-c", EntrypointScript, "coinop-entry"],
            Cmd = [spec.Command, .. spec.Args],
            Env = [.. env.Select(kv => $"{kv.Key}={kv.Value}")],
            WorkingDir = SandboxWorkDir,
            User = options.User,
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
            env["COINOP_PORT"] = port.ToString(CultureInfo.InvariantCulture);
            env["COINOP_ACCESS_TOKEN"] = spec.AccessCredential ?? "";
            parameters.Env = [.. env.Select(kv => $"{kv.Key}={kv.Value}")];
            var key = $"{port}/tcp";
            parameters.ExposedPorts = new Dictionary<string, EmptyStruct> { [key] = default };
            host.PortBindings = new Dictionary<string, IList<PortBinding>> { [key] = [new PortBinding { HostIP = "127.0.0.1", HostPort = "" }] };
        }

        return parameters;
    }

    public async Task<IRunningCopy> StartAsync(SandboxLaunch launch, CancellationToken cancellationToken)
    {
        if (launch.Spec.Validate() is { } problem)
        {
            throw new SandboxException(problem);
        }

        try
        {
            var created = await _client.Containers.CreateContainerAsync(ContainerFor(launch, _options), cancellationToken).ConfigureAwait(false);
            var stream = await _client.Containers.AttachContainerAsync(created.ID, false,
                new ContainerAttachParameters { Stream = true, Stdin = true, Stdout = true, Stderr = true }, cancellationToken).ConfigureAwait(false);
            await _client.Containers.StartContainerAsync(created.ID, new ContainerStartParameters(), cancellationToken).ConfigureAwait(false);
            var inspect = await _client.Containers.InspectContainerAsync(created.ID, cancellationToken).ConfigureAwait(false);
            int? hostPort = null;
            if (launch.Spec.Port is { } port && inspect.NetworkSettings?.Ports is { } ports && ports.TryGetValue($"{port}/tcp", out var bindings) && bindings is { Count: > 0 })
            {
                hostPort = int.Parse(bindings[0].HostPort, CultureInfo.InvariantCulture);
            }

            LogStarted(_logger, launch.Spec.WorkloadId, launch.Spec.Epoch, created.ID);
            return DockerCopy.Run(_client, created.ID, (int)inspect.State.Pid, stream, hostPort, _time, _options.SampleInterval);
        }
        catch (DockerApiException ex)
        {
            throw new SandboxException("docker refused the copy: " + ex.Message, ex);
        }
    }

    private static string Unreachable(Uri endpoint, string why) =>
        $"--workloads docker needs a reachable Docker daemon at {endpoint} ({why}); start dockerd or use --workloads process";

    [LoggerMessage(Level = LogLevel.Information, Message = "Workload {WorkloadId} epoch {Epoch} started in container {ContainerId}")]
    private static partial void LogStarted(ILogger logger, string workloadId, long epoch, string containerId);

    /// <summary>A copy running as a container.</summary>
    private sealed class DockerCopy : IRunningCopy
    {
        private readonly DockerClient _client;
        private readonly string _id;
        private readonly MultiplexedStream _stream;
        private readonly int? _hostPort;
        private readonly TimeProvider _time;
        private readonly long _start;
        private readonly Channel<OutputChunk> _output = Channel.CreateBounded<OutputChunk>(256);
        private readonly TaskCompletionSource<CopyExit> _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly CancellationTokenSource _stop = new();
        private readonly Lock _gate = new();
        private double _cpuSeconds;
        private double _memoryMib;
        private double _peakMib;
        private double _memoryMibSeconds;
        private long _lastSample;
        private long? _end;
        private volatile bool _stopRequested;

        private DockerCopy(DockerClient client, string id, int pid, MultiplexedStream stream, int? hostPort, TimeProvider time)
        {
            _client = client;
            _id = id;
            Pid = pid;
            _stream = stream;
            _hostPort = hostPort;
            _time = time;
            _start = _lastSample = time.GetTimestamp();
        }

        public int Pid { get; }

        public ChannelReader<OutputChunk> Output => _output.Reader;

        public Task<CopyExit> Exited => _exited.Task;

        public static DockerCopy Run(DockerClient client, string id, int pid, MultiplexedStream stream, int? hostPort, TimeProvider time, TimeSpan interval)
        {
            var copy = new DockerCopy(client, id, pid, stream, hostPort, time);
            var pump = copy.PumpAsync();
            _ = copy.SampleLoopAsync(interval);
            _ = copy.WatchAsync(pump);
            return copy;
        }

        public IReadOnlyList<int> LivePids() => _exited.Task.IsCompleted ? [] : [Pid];

        public UsageSnapshot Usage()
        {
            lock (_gate)
            {
                var now = _end ?? _time.GetTimestamp();
                var pending = _end is null ? _memoryMib * _time.GetElapsedTime(_lastSample, now).TotalSeconds : 0;
                return new UsageSnapshot(_cpuSeconds, _memoryMibSeconds + pending, _time.GetElapsedTime(_start, now).TotalSeconds, _memoryMib, _peakMib);
            }
        }

        public async ValueTask<Stream> ConnectToPortAsync(CancellationToken cancellationToken)
        {
            var port = _hostPort ?? throw new InvalidOperationException("The workload declares no port.");
            var client = new TcpClient();
            try
            {
                await client.ConnectAsync(IPAddress.Loopback, port, cancellationToken).ConfigureAwait(false);
                return client.GetStream();
            }
            catch
            {
                client.Dispose();
                throw;
            }
        }

        public async Task<CopyExit> StopAsync(TimeSpan grace, CancellationToken cancellationToken)
        {
            _stopRequested = true;
            try
            {
                await _client.Containers.StopContainerAsync(_id, new ContainerStopParameters { WaitBeforeKillSeconds = (uint)Math.Ceiling(grace.TotalSeconds) }, cancellationToken).ConfigureAwait(false);
            }
            catch (DockerApiException)
            {
                // Already stopped.
            }

            return await _exited.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }

        public async ValueTask DisposeAsync()
        {
            if (!_exited.Task.IsCompleted)
            {
                await StopAsync(TimeSpan.Zero, CancellationToken.None).ConfigureAwait(false);
            }

            _stream.Dispose();
            _stop.Dispose();
        }

        private async Task PumpAsync()
        {
            var buffer = new byte[16 * 1024];
            try
            {
                while (true)
                {
                    var read = await _stream.ReadOutputAsync(buffer, 0, buffer.Length, CancellationToken.None).ConfigureAwait(false);
                    if (read.EOF)
                    {
                        return;
                    }

                    var which = read.Target == MultiplexedStream.TargetStream.StandardError ? OutputStream.Stderr : OutputStream.Stdout;
                    await _output.Writer.WriteAsync(new OutputChunk(which, buffer.AsMemory(0, read.Count).ToArray())).ConfigureAwait(false);
                }
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                // The stream broke (daemon restarted, connection lost): the output ends here; WatchAsync ends the copy.
            }
        }

        private async Task SampleLoopAsync(TimeSpan interval)
        {
            try
            {
                while (!_stop.IsCancellationRequested)
                {
                    await SampleAsync().ConfigureAwait(false);
                    await Task.Delay(interval, _time, _stop.Token).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException)
            {
            }
        }

        private async Task SampleAsync()
        {
            ContainerStatsResponse? stats = null;
            try
            {
                await _client.Containers.GetContainerStatsAsync(_id, new ContainerStatsParameters { Stream = false },
                    new Progress<ContainerStatsResponse>(s => stats = s), _stop.Token).ConfigureAwait(false);
            }
            catch (DockerApiException)
            {
                return;
            }

            if (stats is null)
            {
                return;
            }

            lock (_gate)
            {
                var now = _time.GetTimestamp();
                _memoryMibSeconds += _memoryMib * _time.GetElapsedTime(_lastSample, now).TotalSeconds;
                _lastSample = now;
                _memoryMib = stats.MemoryStats.Usage / (1024.0 * 1024.0);
                _peakMib = Math.Max(_peakMib, _memoryMib);
                _cpuSeconds = Math.Max(_cpuSeconds, stats.CPUStats.CPUUsage.TotalUsage / 1e9);
            }
        }

        private async Task WatchAsync(Task pump)
        {
            // Whatever happens to the daemon or its connection, the copy ends: a copy that never reports its exit
            // would hold its capacity for ever and make every drain wait for its timeout.
            var (code, oom) = (-1, false); // unknown unless the daemon tells
            try
            {
                var wait = await _client.Containers.WaitContainerAsync(_id).ConfigureAwait(false);
                await pump.ConfigureAwait(false);
                var inspect = await _client.Containers.InspectContainerAsync(_id).ConfigureAwait(false);
                (code, oom) = ((int)wait.StatusCode, inspect.State.OOMKilled);
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                // The daemon or the connection failed: the copy is reported ended with an unknown exit code.
            }
            finally
            {
                await _stop.CancelAsync().ConfigureAwait(false);
                lock (_gate)
                {
                    var now = _time.GetTimestamp();
                    _memoryMibSeconds += _memoryMib * _time.GetElapsedTime(_lastSample, now).TotalSeconds;
                    _memoryMib = 0;
                    _end = now;
                }

                try
                {
                    await _client.Containers.RemoveContainerAsync(_id, new ContainerRemoveParameters { Force = true }).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is not OutOfMemoryException)
                {
                    // Best effort: the daemon removes nothing it cannot reach; the copy is over either way.
                }

                _output.Writer.TryComplete();
                _exited.TrySetResult(new CopyExit(code, oom, _stopRequested));
            }
        }
    }
}
