using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;

namespace Coinop.Provider.Workloads.Bridge;

/// <summary>
/// Exposes a workload's port on a host TCP port. Every client must first send one line,
/// <c>COINOP-ACCESS &lt;credential&gt;\n</c>; the bridge checks it in constant time and only then opens a stream to the
/// workload (through the in-sandbox forwarder for bubblewrap, straight to 127.0.0.1:PORT for a plain process) and
/// pipes bytes both ways. A client without the credential never reaches the workload, so workloads need not check it
/// themselves (they also get it as <c>COINOP_ACCESS_TOKEN</c>). Bytes through the bridge, both directions after the
/// preamble, are the copy's network usage: a bubblewrap copy has no other network.
/// </summary>
public sealed partial class PortBridge : IAsyncDisposable
{
    public const string PreamblePrefix = "COINOP-ACCESS ";
    private const int MaxPreamble = 512;

    private readonly TcpListener _listener;
    private readonly byte[] _credential;
    private readonly Func<CancellationToken, ValueTask<Stream>> _connect;
    private readonly TimeSpan _preambleTimeout;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _acceptLoop;
    private long _bytesIn;
    private long _bytesOut;

    private PortBridge(TcpListener listener, string credential, Func<CancellationToken, ValueTask<Stream>> connect, TimeSpan preambleTimeout, ILogger logger)
    {
        _listener = listener;
        _credential = Encoding.UTF8.GetBytes(credential);
        _connect = connect;
        _preambleTimeout = preambleTimeout;
        _logger = logger;
        _acceptLoop = AcceptLoopAsync();
    }

    /// <summary>The host port clients connect to.</summary>
    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Bytes from clients to the workload.</summary>
    public long BytesIn => Interlocked.Read(ref _bytesIn);

    /// <summary>Bytes from the workload to clients.</summary>
    public long BytesOut => Interlocked.Read(ref _bytesOut);

    public long TotalBytes => BytesIn + BytesOut;

    /// <summary>Starts listening on <paramref name="bind"/> (port 0 picks a free port).</summary>
    public static PortBridge Start(IPEndPoint bind, string credential, Func<CancellationToken, ValueTask<Stream>> connectToWorkload, TimeSpan preambleTimeout, ILogger logger)
    {
        ArgumentException.ThrowIfNullOrEmpty(credential);
        var listener = new TcpListener(bind);
        listener.Start();
        return new PortBridge(listener, credential, connectToWorkload, preambleTimeout, logger);
    }

    /// <summary>The line a client sends first.</summary>
    public static byte[] Preamble(string credential) => Encoding.UTF8.GetBytes(PreamblePrefix + credential + "\n");

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener.Stop();
        await _acceptLoop.ConfigureAwait(false);
        _stop.Dispose();
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            _ = HandleAsync(client);
        }
    }

    private async Task HandleAsync(TcpClient client)
    {
        using var _ = client;
        try
        {
            var stream = client.GetStream();
            var (accepted, leftover) = await ReadPreambleAsync(stream).ConfigureAwait(false);
            if (!accepted)
            {
                LogRefused(_logger, client.Client.RemoteEndPoint?.ToString() ?? "?");
                return;
            }

            await using var upstream = await _connect(_stop.Token).ConfigureAwait(false);
            if (leftover.Length > 0)
            {
                await upstream.WriteAsync(leftover, _stop.Token).ConfigureAwait(false);
                Interlocked.Add(ref _bytesIn, leftover.Length);
            }

            using var done = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            var toWorkload = PumpAsync(stream, upstream, n => Interlocked.Add(ref _bytesIn, n), done.Token);
            var toClient = PumpAsync(upstream, stream, n => Interlocked.Add(ref _bytesOut, n), done.Token);
            // When the workload closes, the client is done; when the client half-closes, the reply may still come.
            await toClient.ConfigureAwait(false);
            await done.CancelAsync().ConfigureAwait(false);
            await toWorkload.ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
        }
    }

    /// <summary>Reads the preamble line; returns whether it carries the credential and any bytes that followed it.</summary>
    private async Task<(bool Accepted, byte[] Leftover)> ReadPreambleAsync(NetworkStream stream)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        timeout.CancelAfter(_preambleTimeout);
        var buffer = new byte[MaxPreamble];
        var length = 0;
        while (length < buffer.Length)
        {
            int n;
            try
            {
                n = await stream.ReadAsync(buffer.AsMemory(length), timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!_stop.IsCancellationRequested)
            {
                return (false, []);
            }

            if (n == 0)
            {
                return (false, []);
            }

            var newline = Array.IndexOf(buffer, (byte)'\n', length, n);
            length += n;
            if (newline >= 0)
            {
                var line = buffer.AsSpan(0, newline).TrimEnd((byte)'\r');
                var prefix = Encoding.ASCII.GetBytes(PreamblePrefix);
                var ok = line.StartsWith(prefix) && CryptographicOperations.FixedTimeEquals(line[prefix.Length..], _credential);
                return (ok, buffer[(newline + 1)..length]);
            }
        }

        return (false, []);
    }

    private static async Task PumpAsync(Stream from, Stream to, Action<int> count, CancellationToken cancellationToken)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            int n;
            while ((n = await from.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
            {
                await to.WriteAsync(buffer.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
                count(n);
            }

            // Pass the end of input on, so request/response protocols see it.
            if (to is NetworkStream ns)
            {
                ns.Socket.Shutdown(SocketShutdown.Send);
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
        }
    }
}
