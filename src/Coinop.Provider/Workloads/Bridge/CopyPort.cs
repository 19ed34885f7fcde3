using System.Net;
using System.Net.Sockets;
using Coinop.Provider.Workloads.Metering;

namespace Coinop.Provider.Workloads.Bridge;

/// <summary>
/// Opens streams to a local copy's port, by the one route its sandbox allows: for bubblewrap run by a root agent, a
/// socket created inside the copy's network namespace (<see cref="NetworkNamespace"/>); for bubblewrap run by any other
/// user, the in-sandbox forwarder dialing back (<see cref="DialBackListener"/>); for a docker container (network
/// <c>none</c>), a socket created inside the container's namespace; for a plain process, 127.0.0.1:PORT on the host. None of them resolves a path the copy can write. A workload still starting gets until the timeout.
/// </summary>
internal sealed class CopyPort : IDisposable
{
    private static readonly TimeSpan Retry = TimeSpan.FromMilliseconds(50);

    private readonly int? _port;
    private readonly int _pid;
    private readonly long _startTicks;
    private readonly DialBackListener? _listener;
    private readonly bool _bubblewrap;
    private readonly bool _ownNamespace;
    private readonly TimeSpan _timeout;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private NetworkNamespace? _namespace;
    private bool _disposed;

    /// <param name="pid">The copy's top process (bwrap, whose first child holds the copy's namespaces).</param>
    public CopyPort(int? port, int pid, DialBackListener? listener, bool bubblewrap, TimeSpan timeout, TimeProvider time)
    {
        _port = port;
        _pid = pid;
        _startTicks = ProcFs.ReadStat(pid)?.StartTicks ?? -1;
        _listener = listener;
        _bubblewrap = bubblewrap;
        _timeout = timeout;
        _time = time;
    }

    /// <summary>A port inside the network namespace of <paramref name="pid"/> itself (a container's first process).</summary>
    public CopyPort(int? port, int pid, long startTicks, TimeSpan timeout, TimeProvider time)
    {
        _port = port;
        _pid = pid;
        _startTicks = startTicks;
        _ownNamespace = true;
        _timeout = timeout;
        _time = time;
    }

    public async ValueTask<Stream> ConnectAsync(Task exited, CancellationToken cancellationToken)
    {
        var port = _port ?? throw new InvalidOperationException("The workload declares no port.");
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(_timeout);
        if (_listener is not null)
        {
            return await _listener.NextAsync(deadline.Token).ConfigureAwait(false);
        }

        while (true)
        {
            try
            {
                return new NetworkStream(await SocketAsync(port, deadline.Token).ConfigureAwait(false), ownsSocket: true);
            }
            catch (SocketException) when (!deadline.IsCancellationRequested && !exited.IsCompleted)
            {
                // Not listening yet (the workload or its sandbox is still starting).
                await Task.Delay(Retry, _time, deadline.Token).ConfigureAwait(false);
            }
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            _namespace?.Dispose();
            _namespace = null;
        }

        _listener?.Dispose();
    }

    private async Task<Socket> SocketAsync(int port, CancellationToken cancellationToken)
    {
        if (!_bubblewrap && !_ownNamespace)
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), cancellationToken).ConfigureAwait(false);
                return socket;
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }

        var ns = Namespace() ?? throw new SocketException((int)SocketError.ConnectionRefused);
        return await ns.ConnectAsync(port, cancellationToken).ConfigureAwait(false);
    }

    private NetworkNamespace? Namespace()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _namespace ??= _ownNamespace ? NetworkNamespace.OfProcess(_pid, _startTicks) : NetworkNamespace.OfChild(_pid, _startTicks);
        }
    }
}
