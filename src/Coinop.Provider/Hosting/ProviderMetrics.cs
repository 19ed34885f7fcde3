using System.Diagnostics.Metrics;

namespace Coinop.Provider.Hosting;

/// <summary>The agent's metrics: jobs by outcome, bytes relayed, latency to first byte and job duration.</summary>
public sealed class ProviderMetrics
{
    public const string MeterName = "Coinop.Provider";

    private readonly Counter<long> _jobs;
    private readonly Counter<long> _backendBytes;
    private readonly Counter<long> _relayedBytes;
    private readonly Histogram<double> _firstByte;
    private readonly Histogram<double> _duration;
    private readonly Counter<long> _copiesStarted;
    private readonly Counter<long> _copiesExited;
    private readonly Counter<long> _checkpoints;

    public ProviderMetrics(IMeterFactory meters)
    {
        var meter = meters.Create(MeterName);
        _jobs = meter.CreateCounter<long>("coinop.provider.jobs", "{job}", "Jobs by outcome (done, cancelled, or the error code)");
        _backendBytes = meter.CreateCounter<long>("coinop.provider.backend.bytes_read", "By", "Bytes read from backends");
        _relayedBytes = meter.CreateCounter<long>("coinop.provider.bytes_relayed", "By", "Job output bytes handed to the market link");
        _firstByte = meter.CreateHistogram<double>("coinop.provider.job.first_byte", "ms", "Time from job start to the backend's first output byte");
        _duration = meter.CreateHistogram<double>("coinop.provider.job.duration", "ms", "Time from job start to its end");
        _copiesStarted = meter.CreateCounter<long>("coinop.workloads.copies_started", "{copy}", "Workload copies started");
        _copiesExited = meter.CreateCounter<long>("coinop.workloads.copies_exited", "{copy}", "Workload copies that exited, by whether the kernel killed them for memory");
        _checkpoints = meter.CreateCounter<long>("coinop.workloads.checkpoints", "{checkpoint}",
            "Checkpoint attempts by outcome: sent, failed, too_large, no_link, link_lost");
    }

    public void JobEnded(string outcome, TimeSpan duration)
    {
        _jobs.Add(1, new KeyValuePair<string, object?>("outcome", outcome));
        _duration.Record(duration.TotalMilliseconds, new KeyValuePair<string, object?>("outcome", outcome));
    }

    public void FirstByte(TimeSpan latency) => _firstByte.Record(latency.TotalMilliseconds);

    public void BackendRead(int bytes) => _backendBytes.Add(bytes);

    public void Relayed(int bytes) => _relayedBytes.Add(bytes);

    public void CopyStarted() => _copiesStarted.Add(1);

    public void Checkpoint(string outcome) => _checkpoints.Add(1, new KeyValuePair<string, object?>("outcome", outcome));

    public void CopyExited(bool oomKilled) => _copiesExited.Add(1, new KeyValuePair<string, object?>("oom", oomKilled));
}
