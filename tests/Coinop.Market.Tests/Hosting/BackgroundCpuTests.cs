using Coinop.Market.Hosting;

namespace Coinop.Market.Tests.Hosting;

public class BackgroundCpuTests
{
    [Fact]
    public async Task Work_runs_on_one_dedicated_thread_at_the_lowest_priority()
    {
        using var cpu = new BackgroundCpu();
        var ct = TestContext.Current.CancellationToken;

        var first = await cpu.RunAsync(() => (Environment.CurrentManagedThreadId, Nice: NiceOfThisThread()), ct);
        var second = await cpu.RunAsync(() => Environment.CurrentManagedThreadId, ct);

        Assert.Equal(first.CurrentManagedThreadId, second);
        Assert.NotEqual(Environment.CurrentManagedThreadId, second);
        if (OperatingSystem.IsLinux())
        {
            Assert.Equal(19, first.Nice);
        }
    }

    [Fact]
    public async Task A_failure_reaches_the_caller_and_the_thread_goes_on()
    {
        using var cpu = new BackgroundCpu();
        var ct = TestContext.Current.CancellationToken;

        var failure = await Assert.ThrowsAsync<InvalidOperationException>(() => cpu.RunAsync<int>(() => throw new InvalidOperationException("boom"), ct));
        Assert.Equal("boom", failure.Message);
        Assert.Equal(42, await cpu.RunAsync(() => 42, ct));
    }

    [Fact]
    public async Task Work_cancelled_while_queued_never_runs_and_after_dispose_nothing_is_taken()
    {
        var cpu = new BackgroundCpu();
        var ct = TestContext.Current.CancellationToken;
        using var release = new ManualResetEventSlim();
        var blocker = cpu.RunAsync(() =>
        {
            release.Wait(ct);
            return true;
        }, ct);
        using var cancel = new CancellationTokenSource();
        var ran = false;
        var queued = cpu.RunAsync(() => ran = true, cancel.Token);

        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => queued);
        release.Set();
        Assert.True(await blocker);
        await cpu.RunAsync(() => 0, ct); // the queue is in order: the cancelled job has been passed by now
        Assert.False(ran);

        cpu.Dispose();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => cpu.RunAsync(() => 1, ct));
    }

    // Field 19 of /proc/thread-self/stat is the nice value (fields counted after the parenthesised name).
    private static int NiceOfThisThread() =>
        OperatingSystem.IsLinux()
            ? int.Parse(Stat()[(Stat().LastIndexOf(')') + 2)..].Split(' ')[16], System.Globalization.CultureInfo.InvariantCulture)
            : 0;

    private static string Stat() => File.ReadAllText("/proc/thread-self/stat");
}
