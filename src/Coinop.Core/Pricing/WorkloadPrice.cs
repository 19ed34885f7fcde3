using System.Globalization;

namespace Coinop.Core.Pricing;

/// <summary>
/// A provider's workload rates: millisatoshi per CPU core-second and per GiB-second of memory (a GiB is 1024 MiB,
/// the unit of <c>--memory</c>). Written <c>CPU:MEM</c> on the command line, e.g. <c>20:5</c>.
/// </summary>
public readonly record struct WorkloadPrice(long CpuMsatPerCoreSecond, long MemoryMsatPerGbSecond)
{
    /// <summary>What a provider charges when it names no price: 20 msat per core-second, 5 msat per GiB-second.</summary>
    public static WorkloadPrice Default { get; } = new(20, 5);

    public static bool TryParse(string? text, out WorkloadPrice price, out string? error)
    {
        price = default;
        error = null;
        var parts = text?.Split(':') ?? [];
        if (parts.Length != 2
            || !long.TryParse(parts[0].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var cpu)
            || !long.TryParse(parts[1].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var memory)
            || cpu > MaxRate || memory > MaxRate)
        {
            error = $"'{text}' is not a workload price: expected CPU_MSAT_PER_CORE_S:MEM_MSAT_PER_GB_S in whole msat, e.g. 20:5";
            return false;
        }

        price = new WorkloadPrice(cpu, memory);
        return true;
    }

    /// <summary>The highest rate a provider may ask (1,000 sat per core-second), so sums over standbys cannot overflow.</summary>
    public const long MaxRate = 1_000_000;

    /// <summary>The exact rate of holding <paramref name="cpuCores"/> and <paramref name="memoryMb"/> MiB for one second.</summary>
    public decimal MsatPerSecond(double cpuCores, long memoryMb) =>
        (decimal)cpuCores * CpuMsatPerCoreSecond + memoryMb * (decimal)MemoryMsatPerGbSecond / 1024m;

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{CpuMsatPerCoreSecond}:{MemoryMsatPerGbSecond}");
}

/// <summary>A provider serving a workload (its copy, or a standby's reservation) and the rate it is paid, msat per second.</summary>
public readonly record struct ProviderRate(string ProviderId, decimal MsatPerSecond);

/// <summary>What a provider is charged to the consumer for a span of a workload's time, in msat.</summary>
public readonly record struct WorkloadCharge(string ProviderId, long Msat);

/// <summary>
/// The per-second price of one workload: its primary's rate plus the rate of the capacity each standby reserves
/// (a reservation is paid as if it ran). Time bought is rounded down and a cost asked for rounded up, so paid time
/// never exceeds what was paid; what time consumed is charged is rounded down, never above the quote.
/// </summary>
public sealed record WorkloadQuote(decimal MsatPerSecond)
{
    /// <summary>The quote for a workload of <paramref name="cpuCores"/> and <paramref name="memoryMb"/> on a primary and its standbys.</summary>
    public static WorkloadQuote For(double cpuCores, long memoryMb, WorkloadPrice primary, IEnumerable<WorkloadPrice> standbys) =>
        new(standbys.Aggregate(primary.MsatPerSecond(cpuCores, memoryMb), (sum, s) => sum + s.MsatPerSecond(cpuCores, memoryMb)));

    public bool IsFree => MsatPerSecond <= 0;

    /// <summary>What <paramref name="duration"/> costs, rounded up to a whole msat.</summary>
    public long CostMsat(TimeSpan duration) => ToMsat(decimal.Ceiling(MsatPerSecond * Seconds(duration)));

    /// <summary>Whole seconds <paramref name="amountMsat"/> buys (rounded down); null when the workload is free.</summary>
    public TimeSpan? LeaseFor(long amountMsat) => IsFree
        ? null
        : TimeSpan.FromSeconds((double)decimal.Min(decimal.Floor(Math.Max(0, amountMsat) / MsatPerSecond), MaxLeaseSeconds));

    /// <summary>
    /// The charge for <paramref name="milliseconds"/> of time during which <paramref name="serving"/> held the workload
    /// (its copy and its standbys, each at its own rate), per provider in that order, rounded down to the msat. The total
    /// never exceeds this quote for that time (when the providers' rates add up to more, say after a respawn on a dearer
    /// provider, every share is scaled down alike) nor <paramref name="availableMsat"/>.
    /// </summary>
    public IReadOnlyList<WorkloadCharge> Charges(IReadOnlyList<ProviderRate> serving, long milliseconds, long availableMsat)
    {
        var charges = new List<WorkloadCharge>(serving.Count);
        var seconds = Math.Max(0, milliseconds) / 1000m;
        var total = serving.Sum(s => Math.Max(0, s.MsatPerSecond));
        var scale = total > MsatPerSecond && total > 0 ? MsatPerSecond / total : 1m;
        var left = Math.Min(Math.Max(0, availableMsat), ToMsat(decimal.Floor(Math.Max(0, MsatPerSecond) * seconds)));
        foreach (var s in serving)
        {
            var msat = Math.Min(left, ToMsat(decimal.Floor(Math.Max(0, s.MsatPerSecond) * scale * seconds)));
            left -= msat;
            charges.Add(new WorkloadCharge(s.ProviderId, msat));
        }

        return charges;
    }

    /// <summary>Ten years: far beyond any real lease, and far from TimeSpan's limits.</summary>
    private const decimal MaxLeaseSeconds = 315_360_000m;

    private static decimal Seconds(TimeSpan duration) => duration <= TimeSpan.Zero ? 0 : (decimal)duration.Ticks / TimeSpan.TicksPerSecond;

    private static long ToMsat(decimal value) => value >= long.MaxValue ? long.MaxValue : (long)value;
}
