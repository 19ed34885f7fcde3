using System.Text.RegularExpressions;

namespace Coinop.Provider.Workloads;

/// <summary>
/// A request to run one copy of a workload on this provider.
/// </summary>
/// <param name="WorkloadId">The market's workload id; letters, digits, '-' and '_' (it names folders and cgroups).</param>
/// <param name="Epoch">The fencing token of the lease this copy runs under.</param>
/// <param name="Command">The program to run (looked up on PATH inside the sandbox).</param>
/// <param name="Env">Environment of the copy; nothing of the agent's environment leaks in.</param>
/// <param name="CpuCores">CPU limit in cores (0.5 = half a core).</param>
/// <param name="MemoryMb">Memory limit in MiB.</param>
/// <param name="Port">The port the workload listens on at 127.0.0.1, exposed through the port bridge.</param>
/// <param name="WantsStateDir">Gives the copy a state directory (<c>COINOP_STATE_DIR</c>) that checkpoints archive.</param>
/// <param name="AccessCredential">The credential a client must present to the port bridge (also in <c>COINOP_ACCESS_TOKEN</c>).</param>
/// <param name="Image">Container image for the docker sandbox (the provider's default when null).</param>
public sealed partial record CopySpec(
    string WorkloadId,
    long Epoch,
    string Command,
    IReadOnlyList<string> Args,
    IReadOnlyDictionary<string, string> Env,
    double CpuCores,
    long MemoryMb,
    int? Port = null,
    bool WantsStateDir = false,
    string? AccessCredential = null,
    string? Image = null)
{
    public const long MinMemoryMb = 16;

    /// <summary>The first problem with this request, or null when it can run.</summary>
    public string? Validate()
    {
        if (!IdPattern().IsMatch(WorkloadId))
        {
            return "workload id must be 1-64 letters, digits, '-' or '_'";
        }

        if (Epoch < 0)
        {
            return "epoch must not be negative";
        }

        if (string.IsNullOrWhiteSpace(Command) || Command.Contains('\0', StringComparison.Ordinal) || Args.Any(a => a.Contains('\0', StringComparison.Ordinal)))
        {
            return "command is empty or holds a NUL byte";
        }

        if (!double.IsFinite(CpuCores) || CpuCores < 0.01 || CpuCores > 1024)
        {
            return "cpu cores must be between 0.01 and 1024";
        }

        if (MemoryMb < MinMemoryMb || MemoryMb > 16L * 1024 * 1024)
        {
            return $"memory must be between {MinMemoryMb} MB and 16 TB";
        }

        if (Port is < 1 or > 65535)
        {
            return "port must be between 1 and 65535";
        }

        if (Port is not null && string.IsNullOrEmpty(AccessCredential))
        {
            return "a workload with a port needs an access credential";
        }

        if (Env.Keys.Any(k => !EnvNamePattern().IsMatch(k)) || Env.Values.Any(v => v.Contains('\0', StringComparison.Ordinal)))
        {
            return "environment names must be [A-Za-z_][A-Za-z0-9_]* and values must not hold NUL";
        }

        return null;
    }

    [GeneratedRegex("^[A-Za-z0-9_-]{1,64}$")]
    private static partial Regex IdPattern();

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]*$")]
    private static partial Regex EnvNamePattern();
}
