using System.Diagnostics.Metrics;
using System.Net;

namespace Coinop.Market.Cluster;

/// <summary>The node-to-node metrics (<c>Meter "Coinop.Market.Cluster"</c>).</summary>
public sealed class ClusterMetrics
{
    public const string MeterName = "Coinop.Market.Cluster";

    private readonly Counter<long> _forwarded;
    private readonly Counter<long> _refused;
    private readonly Counter<long> _served;
    private readonly Counter<long> _duties;

    public ClusterMetrics(IMeterFactory meters)
    {
        var meter = meters.Create(MeterName);
        _forwarded = meter.CreateCounter<long>("coinop.cluster.forwards.sent", "{job}", "Job attempts forwarded to the node holding their provider");
        _refused = meter.CreateCounter<long>("coinop.cluster.forwards.refused", "{job}", "Forwarded job attempts the holding node refused, by status");
        _served = meter.CreateCounter<long>("coinop.cluster.forwards.served", "{job}", "Job attempts run here for another node");
        _duties = meter.CreateCounter<long>("coinop.cluster.duties.taken", "{duty}", "Duties this node took, by duty");
    }

    public void Forwarded() => _forwarded.Add(1);

    public void ForwardRefused(HttpStatusCode status) => _refused.Add(1, new KeyValuePair<string, object?>("status", (int)status));

    public void ForwardServed() => _served.Add(1);

    public void DutyTaken(string duty) => _duties.Add(1, new KeyValuePair<string, object?>("duty", duty));
}
