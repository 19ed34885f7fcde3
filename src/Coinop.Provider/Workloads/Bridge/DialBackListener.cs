using System.Net.Sockets;

namespace Coinop.Provider.Workloads.Bridge;

/// <summary>
/// The agent's end of the in-sandbox forwarder (<c>coinop-sandbox-bridge</c>), used when the agent is not root and so
/// cannot enter the copy's network namespace itself. The agent listens on a unix socket in a folder of its own that is
/// bound read-only into the sandbox; the forwarder dials in and keeps one spare connection waiting, and when a client
/// arrives the agent takes it, sends one byte, and the forwarder connects that stream to the workload's port. The agent
/// only ever listens: it never resolves a path the copy could have changed, so a link planted by the copy leads nowhere.
/// </summary>
internal sealed class DialBackListener : IDisposable
{
    /// <summary>The byte that tells the forwarder a client took this connection.</summary>
    public const byte Go = 1;

    private readonly Socket _listener;

    private DialBackListener(Socket listener, string path)
    {
        _listener = listener;
        SocketPath = path;
    }

    public string SocketPath { get; }

    /// <summary>Listens at <paramref name="path"/>; its folder must be the agent's alone.</summary>
    public static DialBackListener Start(string path)
    {
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            listener.Bind(new UnixDomainSocketEndPoint(path));
            listener.Listen(16);
            return new DialBackListener(listener, path);
        }
        catch
        {
            listener.Dispose();
            throw;
        }
    }

    /// <summary>The next stream to the workload's port (waits for the forwarder's spare connection).</summary>
    public async Task<Stream> NextAsync(CancellationToken cancellationToken)
    {
        var socket = await _listener.AcceptAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await socket.SendAsync(new[] { Go }, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        _listener.Dispose();
        try
        {
            File.Delete(SocketPath);
        }
        catch (IOException)
        {
        }
    }
}
