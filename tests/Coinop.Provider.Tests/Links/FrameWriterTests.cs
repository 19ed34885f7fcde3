using System.Buffers;
using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text;
using Coinop.Runtime.Links;

namespace Coinop.Provider.Tests.Links;

public class FrameWriterTests
{
    [Fact]
    public async Task On_an_idle_link_the_caller_sends_its_frame_itself()
    {
        var link = new FakeLink();
        var writer = link.Writer(capacity: 4);

        // No writer loop runs: the frame can only have gone out on the caller's own call.
        Assert.True(await writer.SendAsync(Text("a"), TestContext.Current.CancellationToken));
        Assert.True(writer.TrySend(Text("b")));

        Assert.Equal(["a", "b"], link.Sent);
        Assert.Equal(0, writer.Queued);
    }

    [Fact]
    public async Task Frames_handed_over_while_a_send_is_in_progress_follow_it_in_order()
    {
        var link = new FakeLink();
        var writer = link.Writer(capacity: 8);
        var run = writer.RunAsync();
        var stall = link.StallNext();

        var first = writer.SendAsync(Text("1"), TestContext.Current.CancellationToken);
        await stall.Entered.Task.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
        Assert.True(writer.TrySend(Text("2")));
        var third = writer.SendAsync(Text("3"), TestContext.Current.CancellationToken);
        Assert.True(writer.TrySend(Text("4")));
        Assert.Empty(link.Sent); // "1" is still being sent: nothing may overtake it

        stall.Release.SetResult();
        Assert.True(await first);
        Assert.True(await third);
        await link.WaitForAsync(4);
        Assert.Equal(["1", "2", "3", "4"], link.Sent);

        // Once the queue drained, the caller sends directly again.
        Assert.True(writer.TrySend(Text("5")));
        Assert.Equal("5", link.Sent[^1]);
        writer.Complete();
        await run.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
    }

    [Fact]
    public async Task Nothing_goes_out_after_a_close_frame()
    {
        var link = new FakeLink();
        var writer = link.Writer(capacity: 8);

        Assert.True(writer.TrySend(Text("last")));
        Assert.True(writer.TrySend(OutgoingFrame.Close(WebSocketCloseStatus.NormalClosure, "bye")));
        Assert.False(writer.TrySend(Text("too late")));
        Assert.False(await writer.SendAsync(Text("too late"), TestContext.Current.CancellationToken));

        await writer.RunAsync().WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
        Assert.Equal(["last", "close:bye"], link.Sent);
    }

    [Fact]
    public async Task A_failed_send_breaks_the_link_once_and_refuses_later_frames()
    {
        var link = new FakeLink { FailFrom = 1 };
        var writer = link.Writer(capacity: 8);

        Assert.True(await writer.SendAsync(Text("ok"), TestContext.Current.CancellationToken));
        Assert.False(await writer.SendAsync(Text("fails"), TestContext.Current.CancellationToken));
        Assert.False(writer.TrySend(Text("after")));
        Assert.False(await writer.SendAsync(Text("after"), TestContext.Current.CancellationToken));

        await writer.RunAsync().WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
        Assert.Equal(1, link.Failures);
        Assert.Equal(["ok"], link.Sent);
    }

    [Fact]
    public async Task A_full_queue_refuses_without_waiting_and_waits_when_asked()
    {
        var link = new FakeLink();
        var writer = link.Writer(capacity: 2);
        var stall = link.StallNext();
        var first = writer.SendAsync(Text("0"), TestContext.Current.CancellationToken);
        await stall.Entered.Task.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);

        Assert.True(writer.TrySend(Text("1")));
        Assert.True(writer.TrySend(Text("2")));
        Assert.False(writer.TrySend(Text("dropped")));
        var waiting = writer.SendAsync(Text("3"), TestContext.Current.CancellationToken);
        Assert.False(waiting.IsCompleted);

        var run = writer.RunAsync();
        stall.Release.SetResult();
        Assert.True(await first);
        Assert.True(await waiting);
        await link.WaitForAsync(4);
        Assert.Equal(["0", "1", "2", "3"], link.Sent);
        writer.Complete();
        await run.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
    }

    [Fact]
    public async Task Concurrent_senders_lose_nothing_and_each_sees_its_own_frames_in_order()
    {
        const int Senders = 4;
        const int PerSender = 2_000;
        var link = new FakeLink { YieldEvery = 7 };
        var writer = link.Writer(capacity: 16);
        var run = writer.RunAsync();

        await Task.WhenAll(Enumerable.Range(0, Senders).Select(s => Task.Run(async () =>
        {
            for (var i = 0; i < PerSender; i++)
            {
                var frame = Pooled($"{s}:{i}");
                var sent = i % 3 == 0 ? writer.TrySend(frame) : await writer.SendAsync(frame, TestContext.Current.CancellationToken);
                while (!sent)
                {
                    // TrySend refuses when the queue is full; the frame was released, so build it again.
                    await Task.Yield();
                    sent = writer.TrySend(Pooled($"{s}:{i}"));
                }
            }
        })));
        await link.WaitForAsync(Senders * PerSender);
        writer.Complete();
        await run.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);

        Assert.Equal(Senders * PerSender, link.Sent.Count);
        foreach (var group in link.Sent.Select(t => t.Split(':')).GroupBy(p => p[0]))
        {
            Assert.Equal(Enumerable.Range(0, PerSender), group.Select(p => int.Parse(p[1], System.Globalization.CultureInfo.InvariantCulture)));
        }
    }

    [Fact]
    public async Task Two_frames_sent_together_on_an_idle_link_leave_in_one_write()
    {
        var link = new FakeLink { Holding = new FakeHolding() };
        var writer = link.Writer(capacity: 4);

        Assert.True(await writer.SendAsync(Pooled("last chunk"), Text("done"), TestContext.Current.CancellationToken));
        Assert.True(await writer.SendAsync(Text("alone"), TestContext.Current.CancellationToken));

        Assert.Equal(["last chunk", "done", "alone"], link.Sent);
        Assert.Equal([["last chunk", "done"], ["alone"]], link.Holding.Writes);
    }

    [Fact]
    public async Task Frames_queued_behind_a_send_go_out_together_in_order_and_none_waits_for_another()
    {
        var link = new FakeLink { Holding = new FakeHolding() };
        var writer = link.Writer(capacity: 8);
        var stall = link.StallNext();
        var first = writer.SendAsync(Text("1"), TestContext.Current.CancellationToken);
        await stall.Entered.Task.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
        Assert.True(writer.TrySend(Text("2")));
        var pair = writer.SendAsync(Text("3"), Text("4"), TestContext.Current.CancellationToken);
        Assert.True(writer.TrySend(Text("5")));

        var run = writer.RunAsync();
        stall.Release.SetResult();
        Assert.True(await first);
        Assert.True(await pair);
        await link.Holding.WaitForWritesAsync(2);
        Assert.Equal(["1", "2", "3", "4", "5"], link.Sent);
        Assert.Equal([["1"], ["2", "3", "4", "5"]], link.Holding.Writes);

        // A lone frame is not held back to wait for company.
        Assert.True(writer.TrySend(Text("6")));
        await link.Holding.WaitForWritesAsync(3);
        Assert.Equal(["6"], link.Holding.Writes[^1]);
        writer.Complete();
        await run.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
    }

    [Fact]
    public async Task A_pair_on_a_closing_link_is_released_and_refused()
    {
        var link = new FakeLink { Holding = new FakeHolding() };
        var writer = link.Writer(capacity: 4);
        writer.Complete();

        Assert.False(await writer.SendAsync(Pooled("chunk"), Text("done"), TestContext.Current.CancellationToken));
        Assert.Empty(link.Sent);
    }

    private static OutgoingFrame Text(string text) => OutgoingFrame.Text(Encoding.UTF8.GetBytes(text));

    private static OutgoingFrame Pooled(string text)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(32);
        var length = Encoding.UTF8.GetBytes(text, buffer);
        return OutgoingFrame.Chunk(buffer, length);
    }

    /// <summary>Records what a socket would have sent; can stall a send or fail from the n-th frame on.</summary>
    private sealed class FakeLink
    {
        private readonly ConcurrentQueue<string> _sent = new();
        private readonly SemaphoreSlim _progress = new(0);
        private Stall? _stall;
        private int _sends;
        private int _inSend;

        public int FailFrom { get; init; } = int.MaxValue;

        public int YieldEvery { get; init; }

        public int Failures { get; private set; }

        public List<string> Sent => [.. _sent];

        /// <summary>Set: the link's transport holds writes, and records which frames left in each write.</summary>
        public FakeHolding? Holding { get; init; }

        public FrameWriter Writer(int capacity) => new(capacity, SendAsync, () => Failures++, Holding);

        public Stall StallNext() => _stall = new Stall();

        public async Task WaitForAsync(int count)
        {
            while (_sent.Count < count)
            {
                await _progress.WaitAsync(TestContext.Current.CancellationToken).WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
            }
        }

        private async ValueTask SendAsync(OutgoingFrame frame)
        {
            Assert.Equal(1, Interlocked.Increment(ref _inSend)); // one sender at a time
            try
            {
                var n = _sends++;
                if (n >= FailFrom)
                {
                    throw new WebSocketException("broken");
                }

                if (Interlocked.Exchange(ref _stall, null) is { } stall)
                {
                    stall.Entered.SetResult();
                    await stall.Release.Task;
                }
                else if (YieldEvery > 0 && n % YieldEvery == 0)
                {
                    await Task.Yield();
                }

                var text = frame.CloseStatus is null ? Encoding.UTF8.GetString(frame.Payload.Span) : "close:" + frame.CloseReason;
                Holding?.Written(text);
                _sent.Enqueue(text);
                _progress.Release();
            }
            finally
            {
                Interlocked.Decrement(ref _inSend);
            }
        }
    }

    /// <summary>A transport that holds writes: a frame sent while not held is a write of its own.</summary>
    private sealed class FakeHolding : IWriteHolding
    {
        private readonly Lock _gate = new();
        private readonly List<List<string>> _writes = [];
        private readonly SemaphoreSlim _wrote = new(0);
        private List<string>? _held;

        public async Task WaitForWritesAsync(int count)
        {
            while (Writes.Count < count)
            {
                await _wrote.WaitAsync(TestContext.Current.CancellationToken).WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
            }
        }

        public List<List<string>> Writes
        {
            get
            {
                lock (_gate)
                {
                    return [.. _writes.Select(w => w.ToList())];
                }
            }
        }

        public void Hold()
        {
            lock (_gate)
            {
                Assert.Null(_held);
                _held = [];
            }
        }

        public ValueTask WriteHeldAsync()
        {
            lock (_gate)
            {
                Assert.NotNull(_held);
                if (_held.Count > 0)
                {
                    _writes.Add(_held);
                }

                _held = null;
            }

            _wrote.Release();

            return ValueTask.CompletedTask;
        }

        public void Written(string frame)
        {
            lock (_gate)
            {
                if (_held is not null)
                {
                    _held.Add(frame);
                }
                else
                {
                    _writes.Add([frame]);
                    _wrote.Release();
                }
            }
        }
    }

    private sealed class Stall
    {
        public TaskCompletionSource Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
