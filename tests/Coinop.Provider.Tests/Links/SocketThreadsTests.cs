using System.Net;
using System.Net.Sockets;
using Coinop.Runtime.Threading;

namespace Coinop.Provider.Tests.Links;

/// <summary>
/// The guard behind the rule "nothing waits on a socket engine thread" (this test process runs socket completions inline,
/// as the agent and a SQLite market do): it must recognise an engine thread, or SQLite would silently run on one.
/// </summary>
public sealed class SocketThreadsTests
{
    [Fact]
    public async Task A_receive_that_completes_later_continues_on_an_engine_thread_and_LeaveAsync_moves_it_to_the_pool()
    {
        var ct = TestContext.Current.CancellationToken;
        Assert.True(SocketThreads.InlineCompletions);
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(listener.LocalEndPoint!, ct);
        using var server = await listener.AcceptAsync(ct);

        var buffer = new byte[1];
        var receiving = server.ReceiveAsync(buffer, SocketFlags.None, ct);
        Assert.False(receiving.IsCompleted); // nothing sent yet: it completes from the engine's event loop
        var onEngine = ContinueAsync(receiving);
        await client.SendAsync(new byte[] { 1 }, SocketFlags.None, ct);
        var (before, after) = await onEngine;

        Assert.True(before, "a socket continuation did not run on an engine thread");
        Assert.False(after, "LeaveAsync did not leave the engine thread");
        Assert.False(SocketThreads.IsCurrent);
        Assert.True(SocketThreads.LeaveAsync().GetAwaiter().IsCompleted); // off an engine thread: no hop
    }

    private static async Task<(bool Before, bool After)> ContinueAsync(ValueTask<int> receiving)
    {
        await receiving.ConfigureAwait(false); // not through the test framework's context: where the socket completes it
        var before = SocketThreads.IsCurrent;
        await SocketThreads.LeaveAsync();
        return (before, SocketThreads.IsCurrent);
    }
}
