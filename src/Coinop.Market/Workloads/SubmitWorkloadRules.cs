using Coinop.Core.Text;
using Coinop.Core.Workloads;

namespace Coinop.Market.Workloads;

/// <summary>What a submitted workload's JSON must satisfy before anything is planned or charged (the spec's own rules come after).</summary>
public static class SubmitWorkloadRules
{
    private const int MaxSealedKey = 1024;
    /// <summary>The longest a workload may be paid for at once (submit or top-up).</summary>
    internal static readonly TimeSpan MaxDuration = TimeSpan.FromDays(3650);

    /// <summary>The first problem with <paramref name="r"/>, as the consumer reads it, or null.</summary>
    public static string? Problem(SubmitWorkloadRequest r)
    {
        if (string.IsNullOrWhiteSpace(r.Command))
        {
            return "'command' is required";
        }

        if (r.Args is not null && r.Args.Any(a => a is null))
        {
            return "'args' must be strings";
        }

        if (r.DurationSeconds is { } d && (!double.IsFinite(d) || d < 1 || d > MaxDuration.TotalSeconds))
        {
            return "'duration_seconds' must be from 1 to 315360000";
        }

        if (r.Cpu is { } cpu && !double.IsFinite(cpu))
        {
            return "'cpu' must be a number of cores";
        }

        if (r.SealTo is not null && !(System.Buffers.Text.Base64.IsValid(r.SealTo, out var sealToBytes) && sealToBytes == 32))
        {
            return "'seal_to' must be a base64 X25519 public key (32 bytes)";
        }

        if (r.Port is not null && r.SealTo is null)
        {
            return "a workload with a port needs 'seal_to': the consumer's X25519 public key its access receipt is sealed to";
        }

        if (r.Checkpointed == true && (r.SealedKeys is null || r.SealedKeys.Count == 0))
        {
            return "a checkpointed workload needs 'sealed_keys': its checkpoint key sealed to each provider that may run it";
        }

        if (r.SealedKeys is { } keys && keys.Any(k => k.Key is not { Length: > 0 and <= 64 } || k.Value is not { Length: > 0 and <= MaxSealedKey } || !System.Buffers.Text.Base64.IsValid(k.Value)))
        {
            return "'sealed_keys' must map provider ids to base64 sealed keys";
        }

        if (r.Id is not null && !WorkloadIds.TryParse(r.Id, out _))
        {
            return "'id' must be 32 lowercase hex digits (a random GUID)";
        }

        if (r.Provider is { Length: > 256 })
        {
            return "'provider' is too long";
        }

        if (r.Isolation is not null && !WireEnum.TryParse<WorkloadIsolation>(r.Isolation, out _))
        {
            return "'isolation' must be 'sandbox' (bubblewrap or docker, the default) or 'none' (any provider, also one without a sandbox)";
        }

        return null;
    }
}
