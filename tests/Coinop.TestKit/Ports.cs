using System.Net;
using System.Net.Sockets;

namespace Coinop.TestKit;

/// <summary>Free loopback ports for child processes that must be told their port up front.</summary>
public static class Ports
{
    public static int GetFree()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
