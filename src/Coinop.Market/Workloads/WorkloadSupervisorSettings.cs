using Coinop.Core.Workloads;
using Coinop.Market.Hosting;

namespace Coinop.Market.Workloads;

/// <summary>The market options the workload supervisor works by, checked once.</summary>
internal sealed record WorkloadSupervisorSettings(
    WorkloadTimings Timings, TimeSpan CheckpointInterval, long MaxCheckpointBytes, TimeSpan FailoverTtl, TimeSpan SettleInterval,
    double MaxProviderCpuCores, long MaxProviderMemoryMb, DeliveryTrustSettings Trust)
{
    public static WorkloadSupervisorSettings From(MarketOptions options) => new(
        options.WorkloadTimings.EnsureValid(),
        options.CheckpointInterval,
        options.MaxCheckpointBytes,
        options.FailoverTtl,
        options.WorkloadSettleInterval,
        options.MaxProviderCpu,
        options.MaxProviderMemoryMb,
        new DeliveryTrustSettings(options.UnprovenProviderCpu, options.UnprovenProviderMemoryMb, options.CapacityProvingTime));

    /// <summary>How often time is fed to the machines: fine enough for the shortest deadline, never busier than needed.</summary>
    public TimeSpan TickInterval => TimeSpan.FromTicks(Math.Clamp(Timings.HeartbeatInterval.Ticks / 2, TimeSpan.FromMilliseconds(50).Ticks, TimeSpan.FromSeconds(1).Ticks));
}
