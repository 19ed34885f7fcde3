using System.Net;
using System.Net.Sockets;
using Coinop.Runtime.Threading;

namespace Coinop.Provider.Tests.Links;

/// <summary>
/// This test process runs socket completions inline, as <c>coinop provider</c> does (InlineSocketCompletions): the
/// agent's tests exercise its production threading only if the switch really took effect.
/// </summary>
public sealed class SocketThreadsTests
{
    [Fact]
    public async Task A_receive_that_completes_later_continues_on_a_socket_engine_thread()
    {
        var ct = TestContext.Current.CancellationToken;
        Assert.Equal("1", Environment.GetEnvironmentVariable(SocketThreads.InlineCompletionsVariable));
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(listener.LocalEndPoint!, ct);
        using var server = await listener.AcceptAsync(ct);

        var buffer = new byte[1];
        var receiving = server.ReceiveAsync(buffer, SocketFlags.None, ct);
        Assert.False(receiving.IsCompleted); // nothing sent yet: it completes from the engine's event loop
        var thread = ContinueAsync(receiving);
        await client.SendAsync(new byte[] { 1 }, SocketFlags.None, ct);

        Assert.Equal(SocketThreads.EngineThreadName, await thread);
    }

    private static async Task<string?> ContinueAsync(ValueTask<int> receiving)
    {
        await receiving.ConfigureAwait(false); // not through the test framework's context: where the socket completes it
        return Thread.CurrentThread.Name;
    }
}
