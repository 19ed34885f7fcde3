using System.ComponentModel.DataAnnotations;
using Coinop.Core.Cluster;
using Coinop.Core.Work;

namespace Coinop.Market.Cluster;

/// <summary>
/// Timings of the node registry, the shared routing view and node duties (defaults suit production; tests shorten them).
/// With the defaults a dead node's duties move to another node within about 12 s, its providers relink within their own
/// reconnect delay, and other nodes stop routing through it at the first failed forward.
/// </summary>
public sealed class ClusterOptions : IValidatableObject
{
    /// <summary>How often a node writes its heartbeat.</summary>
    public TimeSpan NodeHeartbeatInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How long a node counts as alive after its last heartbeat.</summary>
    public TimeSpan NodeTtl { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a duty (a singleton or a partition of work) stays with its node after the node's last renewal.</summary>
    public TimeSpan DutyTtl { get; set; } = TimeSpan.FromSeconds(9);

    /// <summary>How often a duty's holder renews it, and how often the others try to take it.</summary>
    public TimeSpan DutyRenewInterval { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>How often a node reads the other nodes and the providers they hold.</summary>
    public TimeSpan ViewRefreshInterval { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>How often a node publishes the routing figures (load, latency, parking) of the providers it holds.</summary>
    public TimeSpan PublishInterval { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>How long a node waits for the holding node to accept a forwarded job before trying another provider.</summary>
    public TimeSpan ForwardAcceptTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How long a node is skipped after a forward to it failed to connect (until its heartbeat shows it again).</summary>
    public TimeSpan ForwardSuspension { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How often the node holding the takeover duty looks for dead nodes' leftovers (links, holds, redemptions).</summary>
    public TimeSpan TakeoverInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How long the row of a node that is gone (and holds nothing) is kept for <c>/api/nodes</c>.</summary>
    public TimeSpan ForgetNodeAfter { get; set; } = TimeSpan.FromDays(1);

    public NodeTimings NodeTimings => new(NodeHeartbeatInterval, NodeTtl);

    public LeaseTimings DutyTimings => new(DutyTtl, DutyRenewInterval);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        foreach (var error in NodeTimings.Validate().Concat(DutyTimings.Validate()))
        {
            yield return new ValidationResult(error);
        }

        var positive = new (string Name, TimeSpan Value)[]
        {
            (nameof(ViewRefreshInterval), ViewRefreshInterval), (nameof(PublishInterval), PublishInterval),
            (nameof(ForwardAcceptTimeout), ForwardAcceptTimeout), (nameof(ForwardSuspension), ForwardSuspension),
            (nameof(TakeoverInterval), TakeoverInterval), (nameof(ForgetNodeAfter), ForgetNodeAfter),
        };
        foreach (var (name, value) in positive)
        {
            if (value <= TimeSpan.Zero)
            {
                yield return new ValidationResult($"{name} must be positive", [name]);
            }
        }
    }
}
