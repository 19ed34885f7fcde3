using Coinop.Provider.Workloads.Sandboxes;

namespace Coinop.Provider.Tests.Workloads;

internal static class CpuShare
{
    /// <summary>
    /// CPU seconds over wall seconds from the copy's own meter across a window after a warm-up. A correctness check of
    /// the limit (the share it is held to), not a speed measurement; callers use wide margins.
    /// </summary>
    public static async Task<double> MeasureAsync(IRunningCopy copy, TimeSpan window)
    {
        await Task.Delay(TimeSpan.FromMilliseconds(500), TestContext.Current.CancellationToken);
        var a = copy.Usage();
        await Task.Delay(window, TestContext.Current.CancellationToken);
        var b = copy.Usage();
        Assert.False(copy.Exited.IsCompleted, "the hog exited early");
        return (b.CpuCoreSeconds - a.CpuCoreSeconds) / (b.WallSeconds - a.WallSeconds);
    }
}
