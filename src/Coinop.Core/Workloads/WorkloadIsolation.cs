using System.Text.Json.Serialization;

namespace Coinop.Core.Workloads;

/// <summary>What isolation a consumer requires of the provider that runs a workload.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<WorkloadIsolation>))]
public enum WorkloadIsolation
{
    /// <summary>A real sandbox: bubblewrap or docker (the default).</summary>
    [JsonStringEnumMemberName("sandbox")] Sandbox = 1,

    /// <summary>Any provider, including one that runs copies as plain processes (<c>--unsafe-no-sandbox</c>).</summary>
    [JsonStringEnumMemberName("none")] None,
}

/// <summary>
/// The isolation levels providers advertise in their capabilities: <c>bubblewrap</c>, <c>docker</c> (sandboxes) and
/// <c>none</c> (plain processes). Anything a provider sends that is not a known sandbox counts as <c>none</c>.
/// </summary>
public static class IsolationLevels
{
    public const string Bubblewrap = "bubblewrap";
    public const string Docker = "docker";
    public const string None = "none";

    /// <summary>Whether <paramref name="level"/> is a sandbox (older agents suffixed it with <c>+approx-limits</c>).</summary>
    public static bool IsSandbox(string? level)
    {
        var name = level?.Split('+', 2)[0];
        return name is Bubblewrap or Docker;
    }

    /// <summary>Whether a provider at <paramref name="level"/> may run a workload that requires <paramref name="required"/>.</summary>
    public static bool Satisfies(string? level, WorkloadIsolation required) => required == WorkloadIsolation.None || IsSandbox(level);
}
