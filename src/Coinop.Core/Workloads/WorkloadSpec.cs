using System.Globalization;

namespace Coinop.Core.Workloads;

/// <summary>
/// What to do when the workload's own process exits with a failure: <c>never</c> restart, or restart
/// <c>on-failure:N</c> up to N times. Respawns after a provider was lost count against the same budget;
/// promoting a warm standby after a provider was lost does not (that is what the standby was paid for).
/// </summary>
public sealed record RestartPolicy
{
    public const int MaxRestarts = 100;

    private RestartPolicy(int maxAttempts) => MaxAttempts = maxAttempts;

    public static RestartPolicy Never { get; } = new(0);

    /// <summary>How many restarts are allowed (0 for <c>never</c>).</summary>
    public int MaxAttempts { get; }

    public static RestartPolicy OnFailure(int maxAttempts) => maxAttempts is >= 1 and <= MaxRestarts
        ? new RestartPolicy(maxAttempts)
        : throw new ArgumentOutOfRangeException(nameof(maxAttempts), maxAttempts, $"on-failure needs 1..{MaxRestarts} attempts");

    public static bool TryParse(string? text, out RestartPolicy policy, out string error)
    {
        policy = Never;
        error = "";
        var value = text?.Trim() ?? "";
        if (value == "never")
        {
            return true;
        }

        const string prefix = "on-failure:";
        if (value.StartsWith(prefix, StringComparison.Ordinal)
            && int.TryParse(value[prefix.Length..], NumberStyles.None, CultureInfo.InvariantCulture, out var n)
            && n is >= 1 and <= MaxRestarts)
        {
            policy = new RestartPolicy(n);
            return true;
        }

        error = $"restart policy must be 'never' or 'on-failure:N' with N from 1 to {MaxRestarts}, not '{text}'";
        return false;
    }

    public override string ToString() => MaxAttempts == 0 ? "never" : $"on-failure:{MaxAttempts}";
}

/// <summary>
/// A consumer's workload: the command, its resources, the paid duration and how it survives failures. The two kinds
/// of replication combine: <paramref name="Standbys"/> warm standbys hold reserved capacity on other providers (a lost
/// primary is replaced by promoting one), and <paramref name="Checkpointed"/> makes the copy upload its state directory
/// so whatever runs next (a promoted standby or a respawn) restores the latest checkpoint. <paramref name="Isolation"/> is
/// what the consumer requires of the provider's sandbox: placement skips providers below it.
/// </summary>
public sealed record WorkloadSpec(
    string Command,
    IReadOnlyList<string> Args,
    double CpuCores,
    long MemoryMb,
    TimeSpan Duration,
    int? Port,
    RestartPolicy Restart,
    int Standbys,
    bool Checkpointed,
    WorkloadIsolation Isolation = WorkloadIsolation.Sandbox)
{
    public const int MaxStandbys = 8;
    public const int MaxArgs = 1024;

    /// <summary>The least CPU a copy may ask for: every provider's sandbox refuses less, so a smaller one could never start.</summary>
    public const double MinCpuCores = 0.01;

    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(Command) || Command.Contains('\0', StringComparison.Ordinal))
        {
            errors.Add("command must be a non-empty string");
        }

        if (Args is null || Args.Count > MaxArgs || Args.Any(a => a is null || a.Contains('\0', StringComparison.Ordinal)))
        {
            errors.Add($"args must be at most {MaxArgs} strings without NUL characters");
        }

        if (!(CpuCores >= MinCpuCores) || CpuCores > 1024 || double.IsNaN(CpuCores))
        {
            errors.Add("cpu must be from 0.01 to 1024 cores");
        }

        if (MemoryMb is < 16 or > 16L * 1024 * 1024)
        {
            errors.Add("memory must be from 16 MB to 16 TB");
        }

        if (Duration < TimeSpan.FromSeconds(1))
        {
            errors.Add("duration must be at least 1 second");
        }

        if (Port is { } port && port is < 1 or > 65535)
        {
            errors.Add("port must be from 1 to 65535");
        }

        if (Restart is null)
        {
            errors.Add("restart policy is required");
        }

        if (Standbys is < 0 or > MaxStandbys)
        {
            errors.Add($"standbys must be from 0 to {MaxStandbys}");
        }

        if (!Enum.IsDefined(Isolation))
        {
            errors.Add("isolation must be 'sandbox' or 'none'");
        }

        return errors;
    }

    /// <summary>How the workload survives the loss of its provider, for people: <c>none</c>, <c>warm-standby</c>, <c>checkpointed</c> or both.</summary>
    public string Replication => (Standbys > 0, Checkpointed) switch
    {
        (true, true) => "warm-standby+checkpointed",
        (true, false) => "warm-standby",
        (false, true) => "checkpointed",
        _ => "none",
    };
}
