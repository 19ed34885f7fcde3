using System.Net;
using System.Net.Sockets;

// Usage: coinop-sandbox-bridge PORT SOCKET_PATH
// Accepts streams on the unix socket and pipes each one to 127.0.0.1:PORT. Byte counting and the access credential
// are the agent's job on the host side; this side only crosses the network-namespace boundary.
if (args.Length != 2 || !int.TryParse(args[0], out var port) || port is < 1 or > 65535)
{
    await Console.Error.WriteLineAsync("usage: coinop-sandbox-bridge PORT SOCKET_PATH");
    return 2;
}

var path = args[1];
File.Delete(path);
using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
listener.Bind(new UnixDomainSocketEndPoint(path));
listener.Listen(64);
while (true)
{
    var client = await listener.AcceptAsync();
    _ = Task.Run(() => ForwardAsync(client, port));
}

static async Task ForwardAsync(Socket client, int port)
{
    using var upstream = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    try
    {
        await upstream.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port));
        await using var a = new NetworkStream(client, ownsSocket: false);
        await using var b = new NetworkStream(upstream, ownsSocket: false);
        // Both directions run to their end: a client that half-closes still gets the whole reply.
        await Task.WhenAll(PumpAsync(a, upstream), PumpAsync(b, client));
    }
    catch (Exception)
    {
        // The workload is not listening yet or the peer went away: the host side sees the stream close.
    }
    finally
    {
        client.Dispose();
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
    catch (Exception)
    {
    }
}
