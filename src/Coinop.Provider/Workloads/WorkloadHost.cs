using System.Net;
using System.Threading.Channels;
using Coinop.Provider.Hosting;
using Coinop.Provider.Workloads.Bridge;
using Coinop.Provider.Workloads.Checkpoints;
using Coinop.Provider.Workloads.Sandboxes;
using Microsoft.Extensions.Logging;
using NSec.Cryptography;

namespace Coinop.Provider.Workloads;

/// <summary>
/// The copies of workloads on this provider: starts them in a sandbox (with limits, the port bridge and an optional
/// checkpoint restore), stops them by (workload id, epoch), records and signs their usage, forwards their output and
/// exits, stops everything at once when the market is out of reach, and keeps running copies and standby
/// reservations within the provider's capacity.
/// <para>
/// Epoch rules (single writer): at most one copy per workload runs here. A start for an epoch below the highest seen
/// for that workload is refused, as is a second start, or a start after a stop, for the same epoch. A start for a
/// newer epoch first stops the older copy and waits for it to be gone. A stop for epoch E stops the copy only when
/// its epoch is at most E, so a late stop never takes down a newer copy, and it burns E so a late start for E is
/// refused. <see cref="CopyAdmission"/> keeps these rules and the capacity; the host runs what it admits.
/// </para>
/// </summary>
public sealed partial class WorkloadHost : IAsyncDisposable
{
    private readonly ISandbox _sandbox;
    private readonly ProviderMetrics? _metrics;
    private readonly WorkloadHostOptions _options;
    private readonly Key _signingKey;
    private readonly TimeProvider _time;
    private readonly ILogger<WorkloadHost> _logger;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly CopyAdmission _admission;
    private readonly Channel<WorkloadEvent> _events = Channel.CreateUnbounded<WorkloadEvent>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Channel<WorkloadLog> _logs = Channel.CreateBounded<WorkloadLog>(
        new BoundedChannelOptions(4096) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true });

    /// <param name="signingKey">The provider's Ed25519 identity key: it signs every usage record.</param>
    public WorkloadHost(ISandbox sandbox, WorkloadHostOptions options, Key signingKey, TimeProvider time, ILogger<WorkloadHost> logger, ProviderMetrics? metrics = null)
    {
        _metrics = metrics;
        options.Validate();
        _sandbox = sandbox;
        _options = options;
        _signingKey = signingKey;
        _time = time;
        _logger = logger;
        _admission = new CopyAdmission(options);
        Directory.CreateDirectory(CopiesRoot);
    }

    /// <summary>Usage records and exits, in order per copy. Must be drained: it is unbounded because it carries money.</summary>
    public ChannelReader<WorkloadEvent> Events => _events.Reader;

    /// <summary>Output of every copy. Bounded: when nobody reads, the oldest chunks are dropped rather than stalling copies.</summary>
    public ChannelReader<WorkloadLog> Logs => _logs.Reader;

    public string Isolation => _sandbox.Isolation;

    public bool ApproximateLimits => _sandbox.ApproximateLimits;

    /// <summary>Whether copies may reach the internet (<c>--workload-egress</c>, docker only).</summary>
    public bool Egress => _sandbox.Egress;

    /// <summary>The agent's metrics (null in tests that do not count).</summary>
    internal ProviderMetrics? Metrics => _metrics;

    private string CopiesRoot => Path.Combine(_options.DataDirectory, "workloads");

    /// <summary>Where checkpoint archives wait to be uploaded: the agent's own folder, never a copy's.</summary>
    private string ArchivesRoot => Path.Combine(_options.DataDirectory, "checkpoints");

    public WorkloadCapacityView Capacity()
    {
        _gate.Wait();
        try
        {
            return _admission.Capacity();
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>The running copy of a workload, if any (its epoch, pid and bridge port).</summary>
    public (long Epoch, IRunningCopy? Copy, int? BridgePort)? Find(string workloadId)
    {
        _gate.Wait();
        try
        {
            return _admission.Find(workloadId) is { } c ? (c.Spec.Epoch, c.Copy, c.Bridge?.Port) : null;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Starts a copy; restores <paramref name="checkpoint"/> (encrypted under <paramref name="checkpointKey"/>) into its state folder first.</summary>
    public async Task<StartResult> StartAsync(CopySpec spec, byte[]? checkpoint = null, byte[]? checkpointKey = null, CancellationToken cancellationToken = default)
    {
        if (spec.Validate() is { } problem)
        {
            return StartResult.Refused(StartRefusal.Invalid, problem);
        }

        if (checkpoint is not null && (checkpointKey is null || !spec.WantsStateDir))
        {
            return StartResult.Refused(StartRefusal.Invalid, "a checkpoint needs its key and a workload with a state directory");
        }

        ManagedCopy managed;
        ManagedCopy? previous;
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_admission.TryAdmit(spec, () => new ManagedCopy(spec, Path.Combine(CopiesRoot, $"{spec.WorkloadId}-e{spec.Epoch}")), out var admitted, out previous) is { } refused)
            {
                return refused;
            }

            managed = admitted!;
        }
        finally
        {
            _gate.Release();
        }

        IRunningCopy? copy = null;
        try
        {
            if (previous is not null)
            {
                // Single writer: the older copy is gone before the newer one starts (if stopping it fails, the new one
                // is refused and forgotten below, not left holding its capacity).
                await previous.StopAsync(_options.StopGrace, cancellationToken).ConfigureAwait(false);
            }

            var launch = await PrepareAsync(managed, checkpoint, checkpointKey, cancellationToken).ConfigureAwait(false);
            managed.Folders = launch.Folders;
            copy = await _sandbox.StartAsync(launch, cancellationToken).ConfigureAwait(false);
            PortBridge? bridge = null;
            if (spec.Port is not null)
            {
                bridge = PortBridge.Start(new IPEndPoint(_options.BridgeAddress, 0), spec.AccessCredential!, copy.ConnectToPortAsync, _options.BridgePreambleTimeout, _logger);
            }

            var stopArrived = managed.Attach(copy, bridge, _time.GetUtcNow().ToUnixTimeMilliseconds());
            _metrics?.CopyStarted();
            _ = RunAsync(managed);
            if (stopArrived)
            {
                _ = copy.StopAsync(_options.StopGrace, CancellationToken.None);
            }

            return new StartResult(true, null, null, copy.Pid, bridge?.Port);
        }
        catch (Exception ex)
        {
            // Nothing half-started may stay behind: a copy without its bridge is killed, its capacity freed.
            if (copy is not null)
            {
                await copy.DisposeAsync().ConfigureAwait(false);
            }

            await ForgetAsync(managed).ConfigureAwait(false);
            if (ex is OperationCanceledException)
            {
                throw;
            }

            var refusal = ex is CheckpointException ? StartRefusal.CheckpointFailed : StartRefusal.SandboxFailed;
            LogStartFailed(_logger, spec.WorkloadId, spec.Epoch, ex.Message);
            return StartResult.Refused(refusal, ex.Message);
        }
    }

    /// <summary>
    /// Stops the workload's copy if its epoch is at most <paramref name="epoch"/>; returns whether a copy was stopped.
    /// Either way the epoch is burnt for later starts.
    /// </summary>
    public async Task<bool> StopAsync(string workloadId, long epoch, TimeSpan? grace = null, CancellationToken cancellationToken = default)
    {
        ManagedCopy? copy;
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            copy = _admission.Stop(workloadId, epoch);
            if (copy is null)
            {
                return false;
            }
        }
        finally
        {
            _gate.Release();
        }

        await copy.StopAsync(grace ?? _options.StopGrace, cancellationToken).ConfigureAwait(false);
        return true;
    }

    /// <summary>Stops every copy at once (the market is out of reach: its copies must be gone before it could evict them).</summary>
    public async Task StopAllAsync(TimeSpan grace, CancellationToken cancellationToken = default)
    {
        List<ManagedCopy> all;
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            all = [.. _admission.Copies];
        }
        finally
        {
            _gate.Release();
        }

        await Task.WhenAll(all.Select(c => c.StopAsync(grace, cancellationToken))).ConfigureAwait(false);
    }

    /// <summary>Holds capacity for a warm standby of a workload at <paramref name="epoch"/>; false when it does not fit or the epoch is stale.</summary>
    public bool ReserveStandby(string workloadId, long epoch, double cpuCores, long memoryMb)
    {
        _gate.Wait();
        try
        {
            return _admission.Reserve(workloadId, epoch, cpuCores, memoryMb);
        }
        finally
        {
            _gate.Release();
        }
    }

    public void ReleaseStandby(string workloadId)
    {
        _gate.Wait();
        try
        {
            _admission.Release(workloadId);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Archives the running copy's state folder, encrypted under the workload's key, into a temp file of the agent's (null
    /// when there is no such copy). Throws <see cref="CheckpointTooLargeException"/> past the size cap.
    /// </summary>
    public async Task<CheckpointArchive?> CheckpointAsync(string workloadId, long epoch, byte[] key, CancellationToken cancellationToken = default)
    {
        ManagedCopy? copy;
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            copy = _admission.Find(workloadId);
        }
        finally
        {
            _gate.Release();
        }

        if (copy is null || copy.Spec.Epoch != epoch || !copy.Spec.WantsStateDir || copy.Copy is null || copy.Folders?.State is not { } state)
        {
            return null;
        }

        return await CheckpointArchive.CreateAsync(state, key, ArchivesRoot, _options.MaxCheckpointBytes, cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAllAsync(TimeSpan.Zero).ConfigureAwait(false);
        _gate.Dispose();
    }

    private async Task<SandboxLaunch> PrepareAsync(ManagedCopy managed, byte[]? checkpoint, byte[]? key, CancellationToken cancellationToken)
    {
        var spec = managed.Spec;
        var folders = await _sandbox.PrepareAsync(spec, managed.Directory, cancellationToken).ConfigureAwait(false);
        try
        {
            if (checkpoint is not null && folders.State is { } state)
            {
                using var input = new MemoryStream(checkpoint, writable: false);
                await Checkpoint.RestoreAsync(input, key!, state, folders.DiskBytes ?? _options.MaxRestoreBytes, folders.Uid, folders.Gid, cancellationToken).ConfigureAwait(false);
            }

            return new SandboxLaunch(spec, folders);
        }
        catch
        {
            await folders.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Forwards output, records usage every interval, and on exit sends the last record and the exit.</summary>
    private async Task RunAsync(ManagedCopy managed)
    {
        var copy = managed.Copy!;
        var spec = managed.Spec;
        var logs = ForwardLogsAsync(managed);
        using var stopUsage = new CancellationTokenSource();
        var usage = Task.Run(async () =>
        {
            try
            {
                while (true)
                {
                    await Task.Delay(_options.UsageInterval, _time, stopUsage.Token).ConfigureAwait(false);
                    EmitUsage(managed);
                }
            }
            catch (OperationCanceledException)
            {
            }
        });

        var exit = await copy.Exited.ConfigureAwait(false);
        await logs.ConfigureAwait(false);
        await stopUsage.CancelAsync().ConfigureAwait(false);
        await usage.ConfigureAwait(false);
        if (managed.Bridge is not null)
        {
            await managed.Bridge.DisposeAsync().ConfigureAwait(false);
        }

        EmitUsage(managed);
        _metrics?.CopyExited(exit.OomKilled);
        LogExited(_logger, spec.WorkloadId, spec.Epoch, exit.ExitCode, exit.OomKilled);
        _events.Writer.TryWrite(new WorkloadExited(spec.WorkloadId, spec.Epoch, exit));
        await copy.DisposeAsync().ConfigureAwait(false);
        await ForgetAsync(managed).ConfigureAwait(false);
    }

    private async Task ForwardLogsAsync(ManagedCopy managed)
    {
        await foreach (var chunk in managed.Copy!.Output.ReadAllAsync().ConfigureAwait(false))
        {
            _logs.Writer.TryWrite(new WorkloadLog(managed.Spec.WorkloadId, managed.Spec.Epoch, chunk.Stream, chunk.Data));
        }
    }

    private void EmitUsage(ManagedCopy managed)
    {
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var record = managed.NextUsage(now);
        _events.Writer.TryWrite(new WorkloadUsage(record.WorkloadId, record.Epoch, record, record.Sign(_signingKey)));
    }

    /// <summary>Drops the copy's bookkeeping and folder; its capacity is free again.</summary>
    private async Task ForgetAsync(ManagedCopy managed)
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            _admission.Forget(managed);
        }
        finally
        {
            _gate.Release();
        }

        try
        {
            if (managed.Folders is { } folders)
            {
                await folders.DisposeAsync().ConfigureAwait(false);
            }
            else
            {
                HostTree.Delete(managed.Directory);
            }
        }
        catch (IOException ex)
        {
            LogCleanupFailed(_logger, managed.Directory, ex.Message);
        }

        managed.MarkGone();
    }
}
