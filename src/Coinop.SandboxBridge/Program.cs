using System.Net;
using System.Net.Sockets;

// Usage: coinop-sandbox-bridge PORT AGENT_SOCKET
// Runs inside a bubblewrap sandbox (for agents that are not root). It dials the agent's unix socket, bound read-only into
// the sandbox, and keeps one spare connection there; when the agent sends the go byte on it, it dials a new spare and
// connects the taken one to 127.0.0.1:PORT in the sandbox's own network namespace. Byte counting and the access
// credential are the agent's job; this side only crosses the namespace boundary, and only ever connects out.
if (args.Length != 2 || !int.TryParse(args[0], out var port) || port is < 1 or > 65535)
{
    await Console.Error.WriteLineAsync("usage: coinop-sandbox-bridge PORT AGENT_SOCKET");
    return 2;
}

var agent = new UnixDomainSocketEndPoint(args[1]);
var upstreamTimeoutMs = 10_000L;
while (true)
{
    var spare = await DialAgentAsync(agent);
    if (spare is null)
    {
        return 0; // the agent is gone or stopped listening: the copy is ending
    }

    var go = new byte[1];
    int read;
    try
    {
        read = await spare.ReceiveAsync(go);
    }
    catch (SocketException)
    {
        read = 0;
    }

    if (read == 0)
    {
        spare.Dispose();
        return 0;
    }

    _ = Task.Run(() => ForwardAsync(spare, port, upstreamTimeoutMs));
}

static async Task<Socket?> DialAgentAsync(EndPoint agent)
{
    for (var attempt = 0; attempt < 50; attempt++)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(agent);
            return socket;
        }
        catch (SocketException)
        {
            socket.Dispose();
            await Task.Delay(100);
        }
    }

    return null;
}

static async Task ForwardAsync(Socket client, int port, long timeoutMs)
{
    using var _ = client;
    var deadline = Environment.TickCount64 + timeoutMs;
    while (true)
    {
        using var upstream = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await upstream.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port));
        }
        catch (SocketException) when (Environment.TickCount64 < deadline)
        {
            // The workload is not listening yet.
            await Task.Delay(50);
            continue;
        }
        catch (SocketException)
        {
            return;
        }

        await using var a = new NetworkStream(client, ownsSocket: false);
        await using var b = new NetworkStream(upstream, ownsSocket: false);
        // Both directions run to their end: a client that half-closes still gets the whole reply.
        await Task.WhenAll(PumpAsync(a, upstream), PumpAsync(b, client));
        return;
    }
}

// Copies one direction, then half-closes the other side so request/response protocols see end of input.
static async Task PumpAsync(Stream from, Socket to)
{
    var buffer = new byte[16 * 1024];
    try
    {
        int n;
        while ((n = await from.ReadAsync(buffer)) > 0)
        {
            await to.SendAsync(buffer.AsMemory(0, n));
        }

        to.Shutdown(SocketShutdown.Send);
    }
    catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
    {
    }
}
