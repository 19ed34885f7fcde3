using Coinop.Provider.Workloads.Limits;
using Microsoft.Extensions.Logging;

namespace Coinop.Provider.Workloads.Sandboxes;

/// <summary>Picks the sandbox for <c>--workloads MODE</c>.</summary>
public static class SandboxSelection
{
    /// <summary>
    /// "process": bubblewrap, probed through the real launch chain; when it does not work the provider refuses workloads
    /// (a <see cref="SandboxException"/>) unless <paramref name="allowUnsandboxed"/> (<c>--unsafe-no-sandbox</c>), which
    /// runs plain processes with isolation <c>none</c>. Limits by cgroup when one is writable, else approximate.
    /// "docker": the Docker Engine API, or a <see cref="SandboxException"/> with one clear message when no daemon answers.
    /// </summary>
    public static async Task<ISandbox> CreateAsync(string mode, bool allowUnsandboxed, LocalSandboxOptions local, DockerSandboxOptions docker, TimeProvider time, ILogger logger,
        CancellationToken cancellationToken) =>
        mode switch
        {
            "process" => await LocalSandbox.SelectAsync(local, Cgroups.Detect(), allowUnsandboxed, time, logger, cancellationToken).ConfigureAwait(false),
            "docker" => await DockerSandbox.CreateAsync(docker, time, logger, cancellationToken).ConfigureAwait(false),
            _ => throw new SandboxException($"unknown workload sandbox '{mode}' (use process or docker)"),
        };
}
