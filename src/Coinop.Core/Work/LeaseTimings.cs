namespace Coinop.Core.Work;

/// <summary>
/// How long a lease lasts and how often its holder renews it. The TTL must cover at least three renew intervals,
/// so that two renewals lost in a row do not cost a healthy holder its lease.
/// </summary>
public sealed record LeaseTimings(TimeSpan Ttl, TimeSpan RenewInterval)
{
    public const int MinTtlToRenewRatio = 3;

    public static LeaseTimings Default { get; } = new(TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(10));

    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (Ttl < TimeSpan.FromMilliseconds(1))
        {
            errors.Add("lease ttl must be at least 1 ms");
        }

        if (RenewInterval < TimeSpan.FromMilliseconds(1))
        {
            errors.Add("lease renew interval must be at least 1 ms");
        }
        else if (Ttl < RenewInterval * MinTtlToRenewRatio)
        {
            errors.Add($"lease ttl ({Ttl.TotalMilliseconds:0} ms) must be at least {MinTtlToRenewRatio} x the renew interval ({RenewInterval.TotalMilliseconds:0} ms)");
        }

        return errors;
    }

    /// <summary>Throws on invalid timings: they come from code or validated options, never from a request.</summary>
    public LeaseTimings EnsureValid()
    {
        var errors = Validate();
        return errors.Count == 0 ? this : throw new ArgumentException(string.Join("; ", errors));
    }
}
