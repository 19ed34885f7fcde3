using Coinop.Market.Inference;

namespace Coinop.Market.Tests.Inference;

/// <summary>
/// An attempt's events reach its one reader in the order written, a waiting reader takes the next event on the writer's
/// thread, a cancelled wait leaves later events for the next read, and nothing is taken once the attempt has ended.
/// </summary>
public class AttemptEventsTests
{
    private static AttemptEvent Chunk(int length) => new(AttemptEventKind.Chunk, System.Buffers.ArrayPool<byte>.Shared.Rent(Math.Max(1, length)), length, null, null, null);

    private static AttemptEvent Lost(string reason) => new(AttemptEventKind.Lost, null, 0, null, null, reason);

    [Fact]
    public async Task Events_written_before_a_read_come_out_in_order()
    {
        var events = new AttemptEvents();
        Assert.True(events.TryWrite(Chunk(1)));
        Assert.True(events.TryWrite(Chunk(2)));
        Assert.True(events.TryWrite(Lost("gone")));

        Assert.Equal(1, (await events.ReadAsync(CancellationToken.None)).Length);
        Assert.Equal(2, (await events.ReadAsync(CancellationToken.None)).Length);
        Assert.Equal("gone", (await events.ReadAsync(CancellationToken.None)).Reason);
    }

    [Fact]
    public async Task A_waiting_reader_takes_the_event_on_the_writers_thread()
    {
        var events = new AttemptEvents();
        using var cts = new CancellationTokenSource();
        async Task<(int Thread, int Length)> ReadAsync()
        {
            var e = await events.ReadAsync(cts.Token);
            return (Environment.CurrentManagedThreadId, e.Length);
        }

        var read = ReadAsync();
        Assert.False(read.IsCompleted);
        var writer = 0;
        var thread = new Thread(() =>
        {
            writer = Environment.CurrentManagedThreadId;
            events.TryWrite(Chunk(7));
        });
        thread.Start();
        thread.Join();

        Assert.True(read.IsCompleted); // completed inside TryWrite, before the writer's thread ended
        Assert.Equal((writer, 7), await read);
    }

    [Fact]
    public async Task A_cancelled_wait_throws_and_the_next_event_stays_for_the_next_read()
    {
        var events = new AttemptEvents();
        using var cts = new CancellationTokenSource();
        var waiting = events.ReadAsync(cts.Token);
        Assert.False(waiting.IsCompleted);

        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await waiting);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await events.ReadAsync(cts.Token));

        Assert.True(events.TryWrite(Chunk(3)));
        Assert.Equal(3, (await events.ReadAsync(CancellationToken.None)).Length);
    }

    [Fact]
    public async Task Nothing_is_taken_once_the_events_are_closed()
    {
        var events = new AttemptEvents();
        Assert.True(events.TryWrite(Chunk(1)));
        var waitingElsewhere = new AttemptEvents();
        var waiting = waitingElsewhere.ReadAsync(CancellationToken.None);

        events.Close();
        waitingElsewhere.Close();

        Assert.False(events.TryWrite(Chunk(2)));
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await events.ReadAsync(CancellationToken.None));
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await waiting);
    }

    [Fact]
    public async Task Two_writers_and_a_reader_that_keeps_cancelling_lose_and_reorder_nothing()
    {
        // As on a link: frames from the session's reader, a lost link from another thread; the request's reads time out
        // and start again. Every event arrives once, each writer's in its order.
        const int PerWriter = 20_000;
        var events = new AttemptEvents();
        var refused = 0;
        var writers = Enumerable.Range(0, 2).Select(w => new Thread(() =>
        {
            for (var i = 0; i < PerWriter; i++)
            {
                if (!events.TryWrite(new AttemptEvent(AttemptEventKind.Chunk, null, w * PerWriter + i, null, null, null)))
                {
                    Interlocked.Increment(ref refused);
                }
            }
        })).ToList();
        writers.ForEach(t => t.Start());

        var next = new[] { 0, PerWriter };
        var read = 0;
        while (read < 2 * PerWriter)
        {
            using var cts = new CancellationTokenSource();
            var pending = events.ReadAsync(cts.Token);
            if (!pending.IsCompleted && read % 3 == 0)
            {
                await cts.CancelAsync();
            }

            AttemptEvent e;
            try
            {
                e = await pending;
            }
            catch (OperationCanceledException)
            {
                continue;
            }

            var writer = e.Length / PerWriter;
            Assert.Equal(next[writer], e.Length);
            next[writer]++;
            read++;
        }

        writers.ForEach(t => t.Join());
        Assert.Equal(0, refused);
        Assert.Equal([PerWriter, 2 * PerWriter], next);
        events.Close();
    }
}
