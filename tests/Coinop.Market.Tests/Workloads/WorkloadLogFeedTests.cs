using Coinop.Market.Workloads;
using Coinop.Storage.Workloads;
using Microsoft.Extensions.Logging.Abstractions;

namespace Coinop.Market.Tests.Workloads;

public class WorkloadLogFeedTests
{
    [Fact]
    public async Task Flushed_completes_only_after_the_output_queued_before_it_is_stored()
    {
        var ct = TestContext.Current.CancellationToken;
        var store = new GatedStore();
        using var feed = new WorkloadLogFeed(store, NullLogger<WorkloadLogFeed>.Instance);
        await feed.StartAsync(ct);

        Assert.True(feed.TryAdd(new WorkloadLogChunk("w1", 1, "stdout", DateTimeOffset.UnixEpoch, "last line\n"u8.ToArray())));
        var flushed = feed.FlushedAsync(ct);
        await store.AppendStarted.Task.WaitAsync(ct);
        Assert.False(flushed.IsCompleted); // the append is still on its way

        store.Release.SetResult();
        await flushed;
        Assert.Equal("last line\n", System.Text.Encoding.UTF8.GetString(Assert.Single(store.Stored).Data));
        await feed.StopAsync(ct);
    }

    /// <summary>A store whose first append waits until the test lets it finish.</summary>
    private sealed class GatedStore : IWorkloadLogStore
    {
        public TaskCompletionSource AppendStarted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public List<WorkloadLogChunk> Stored { get; } = [];

        public async Task AppendAsync(IReadOnlyList<WorkloadLogChunk> chunks, CancellationToken cancellationToken)
        {
            AppendStarted.TrySetResult();
            await Release.Task.WaitAsync(cancellationToken);
            Stored.AddRange(chunks);
        }

        public Task<IReadOnlyList<WorkloadLogEntry>> ReadAsync(string workloadId, long afterSeq, int limit, CancellationToken cancellationToken) =>
            Task.FromResult<IReadOnlyList<WorkloadLogEntry>>([]);
    }
}
