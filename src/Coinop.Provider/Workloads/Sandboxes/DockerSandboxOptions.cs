using Coinop.Provider.Workloads.Limits;

namespace Coinop.Provider.Workloads.Sandboxes;

/// <summary>Settings of the docker sandbox.</summary>
public sealed class DockerSandboxOptions
{
    /// <summary>The Docker Engine API endpoint.</summary>
    public Uri Endpoint { get; set; } = new("unix:///var/run/docker.sock");

    /// <summary>The image a workload runs in when its spec names none; it needs /bin/sh and cat.</summary>
    public string DefaultImage { get; set; } = "debian:bookworm-slim";

    /// <summary>The user copies run as inside their container when the agent is not root (a root agent gives each copy its own uid).</summary>
    public string User { get; set; } = "65534:65534";

    /// <summary>Process, /tmp and disk caps of each copy, and the uid range of a root agent.</summary>
    public CopyLimits Limits { get; set; } = new();

    /// <summary>The network copies join with <c>--workload-egress</c>: a bridge of its own where containers cannot reach each other.</summary>
    public string EgressNetwork { get; set; } = "coinop-egress";

    public TimeSpan SampleInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Copies may reach the internet (<c>--workload-egress</c>); by default they have no network but their port's bridge.</summary>
    public bool Egress { get; set; }
}
