using System.Diagnostics.Metrics;

namespace Coinop.Market.Workloads;

/// <summary>The workload supervisor's instruments (meter <see cref="MeterName"/>).</summary>
internal sealed class WorkloadMetrics
{
    public const string MeterName = "Coinop.Market.Workloads";

    public WorkloadMetrics(IMeterFactory meters)
    {
        var meter = meters.Create(MeterName);
        Submitted = meter.CreateCounter<long>("coinop.workloads.submitted", "{workload}", "Workloads started");
        Failovers = meter.CreateCounter<long>("coinop.workloads.failovers", "{copy}", "Copies started after a lost one: promoted standbys and respawns");
        Flooded = meter.CreateCounter<long>("coinop.workloads.providers.flooded", "{session}", "Provider sessions closed for queueing more workload messages than the supervisor's per-provider bound");
        FloodDropped = meter.CreateCounter<long>("coinop.workloads.provider_commands.dropped", "{command}", "Queued workload messages of a flooding provider dropped unread");
        HeartbeatCost = meter.CreateHistogram<double>("coinop.workloads.heartbeat.duration", "ms", "Time to process one provider's workload heartbeat");
    }

    public Counter<long> Submitted { get; }

    public Counter<long> Failovers { get; }

    public Histogram<double> HeartbeatCost { get; }

    public Counter<long> Flooded { get; }

    public Counter<long> FloodDropped { get; }
}
