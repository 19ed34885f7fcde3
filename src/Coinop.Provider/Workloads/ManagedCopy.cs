using Coinop.Core.Workloads;
using Coinop.Provider.Workloads.Bridge;
using Coinop.Provider.Workloads.Sandboxes;

namespace Coinop.Provider.Workloads;

/// <summary>One copy's bookkeeping: its spec, folder, running copy, bridge and the start of its next usage window.</summary>
internal sealed class ManagedCopy(CopySpec spec, string directory)
{
    private readonly TaskCompletionSource _gone = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Lock _usageGate = new();
    private readonly Lock _stateGate = new();
    private IRunningCopy? _copy;
    private bool _stopRequested;
    private UsageSnapshot _lastUsage;
    private long _lastBridgeBytes;
    private long _windowStart;

    public CopySpec Spec { get; } = spec;

    public string Directory { get; } = directory;

    public IRunningCopy? Copy
    {
        get
        {
            lock (_stateGate)
            {
                return _copy;
            }
        }
    }

    public PortBridge? Bridge { get; private set; }

    /// <summary>The copy's folders, once its sandbox made them.</summary>
    public CopyFolders? Folders { get; set; }

    /// <summary>Attaches the started copy; returns true when a stop arrived while it was being set up.</summary>
    public bool Attach(IRunningCopy copy, PortBridge? bridge, long startedAt)
    {
        Bridge = bridge;
        _windowStart = startedAt;
        lock (_stateGate)
        {
            _copy = copy;
            return _stopRequested;
        }
    }

    /// <summary>Stops the copy; a copy still being set up is stopped as soon as it is attached.</summary>
    public async Task StopAsync(TimeSpan grace, CancellationToken cancellationToken)
    {
        IRunningCopy? copy;
        lock (_stateGate)
        {
            _stopRequested = true;
            copy = _copy;
        }

        if (copy is not null)
        {
            await copy.StopAsync(grace, cancellationToken).ConfigureAwait(false);
        }

        await _gone.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    public void MarkGone() => _gone.TrySetResult();

    /// <summary>The usage since the last record, as a record for the window up to <paramref name="now"/>.</summary>
    public UsageRecord NextUsage(long now)
    {
        lock (_usageGate)
        {
            var snapshot = Copy!.Usage();
            var bridgeBytes = Bridge?.TotalBytes ?? 0;
            var record = new UsageRecord(Spec.WorkloadId, Spec.Epoch, _windowStart, Math.Max(now, _windowStart),
                snapshot.CpuCoreSeconds - _lastUsage.CpuCoreSeconds,
                snapshot.MemoryMibSeconds - _lastUsage.MemoryMibSeconds,
                bridgeBytes - _lastBridgeBytes,
                snapshot.WallSeconds - _lastUsage.WallSeconds);
            _lastUsage = snapshot;
            _lastBridgeBytes = bridgeBytes;
            _windowStart = record.WindowEnd;
            return record;
        }
    }
}
