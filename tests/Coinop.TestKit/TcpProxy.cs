using System.Net;
using System.Net.Sockets;

namespace Coinop.TestKit;

/// <summary>How a <see cref="TcpProxy"/> cuts the link.</summary>
public enum CutMode
{
    /// <summary>A silent partition: bytes are dropped, sockets stay open, new connections hang.</summary>
    Blackhole,

    /// <summary>Every connection is reset at once and new ones are refused.</summary>
    Reset,
}

/// <summary>
/// A loopback TCP proxy a test can cut and heal, to stage network partitions between real processes.
/// </summary>
public sealed class TcpProxy : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly int _targetPort;
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _gate = new();
    private readonly List<(TcpClient Client, TcpClient Upstream)> _links = [];
    private CutMode? _cutState;

    private CutMode? _cut
    {
        get { lock (_gate) { return _cutState; } }
        set { lock (_gate) { _cutState = value; } }
    }

    private TcpProxy(int targetPort)
    {
        _targetPort = targetPort;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        _ = AcceptLoopAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public string Url => $"http://127.0.0.1:{Port}";

    public bool IsCut => _cut is not null;

    public static TcpProxy Start(int targetPort) => new(targetPort);

    public void Cut(CutMode mode = CutMode.Blackhole)
    {
        _cut = mode;
        if (mode == CutMode.Reset)
        {
            CloseAll();
        }
    }

    /// <summary>Restores forwarding. Connections that lived through a blackhole are reset, as a real peer would after lost segments.</summary>
    public void Heal()
    {
        CloseAll();
        _cut = null;
    }

    private void CloseAll()
    {
        lock (_gate)
        {
            foreach (var (client, upstream) in _links)
            {
                try
                {
                    client.Client.LingerState = new LingerOption(true, 0);
                    client.Dispose();
                    upstream.Dispose();
                }
                catch (Exception)
                {
                }
            }

            _links.Clear();
        }
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception)
            {
                return;
            }

            if (_cut == CutMode.Reset)
            {
                client.Client.LingerState = new LingerOption(true, 0);
                client.Dispose();
                continue;
            }

            _ = HandleAsync(client);
        }
    }

    private async Task HandleAsync(TcpClient client)
    {
        var upstream = new TcpClient();
        try
        {
            // While blackholed, a new connection just hangs, like a SYN into a partition.
            while (_cut == CutMode.Blackhole && !_stop.IsCancellationRequested)
            {
                await Task.Delay(50, _stop.Token);
            }

            await upstream.ConnectAsync(IPAddress.Loopback, _targetPort, _stop.Token);
            lock (_gate)
            {
                _links.Add((client, upstream));
            }

            var a = PumpAsync(client.GetStream(), upstream.GetStream());
            var b = PumpAsync(upstream.GetStream(), client.GetStream());
            await Task.WhenAny(a, b);
        }
        catch (Exception)
        {
        }
        finally
        {
            lock (_gate)
            {
                _links.RemoveAll(l => l.Client == client);
            }

            client.Dispose();
            upstream.Dispose();
        }
    }

    private async Task PumpAsync(NetworkStream from, NetworkStream to)
    {
        var buffer = new byte[16 * 1024];
        while (true)
        {
            var n = await from.ReadAsync(buffer, _stop.Token);
            if (n == 0)
            {
                return;
            }

            if (_cut is not null)
            {
                continue; // dropped on the floor
            }

            await to.WriteAsync(buffer.AsMemory(0, n), _stop.Token);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        CloseAll();
        _stop.Dispose();
    }
}
