using System.Net;
using System.Net.Sockets;

namespace Coinop.Market.Mint;

/// <summary>
/// Counts the open connections of each client and refuses one past the cap. A client is its IPv4 address, or the /64
/// an IPv6 address is in (one host is usually given a whole /64, so counting single IPv6 addresses would bound nothing).
/// </summary>
public sealed class ClientConnections
{
    private readonly Dictionary<string, int> _open = new(StringComparer.Ordinal);

    /// <summary>The key a remote address is counted under.</summary>
    public static string ClientOf(IPAddress? address)
    {
        if (address is null)
        {
            return "unknown";
        }

        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        if (address.AddressFamily == AddressFamily.InterNetworkV6)
        {
            var bytes = address.GetAddressBytes();
            return Convert.ToHexStringLower(bytes.AsSpan(0, 8)) + "::/64";
        }

        return address.ToString();
    }

    /// <summary>Counts a new connection of <paramref name="client"/>; false (nothing counted) when it holds <paramref name="max"/> already.</summary>
    public bool TryOpen(string client, int max)
    {
        lock (_open)
        {
            var open = _open.GetValueOrDefault(client);
            if (open >= max)
            {
                return false;
            }

            _open[client] = open + 1;
            return true;
        }
    }

    /// <summary>A connection counted by <see cref="TryOpen"/> closed.</summary>
    public void Close(string client)
    {
        lock (_open)
        {
            if (_open.TryGetValue(client, out var open))
            {
                if (open <= 1)
                {
                    _open.Remove(client);
                }
                else
                {
                    _open[client] = open - 1;
                }
            }
        }
    }

    /// <summary>How many connections <paramref name="client"/> holds now.</summary>
    public int OpenOf(string client)
    {
        lock (_open)
        {
            return _open.GetValueOrDefault(client);
        }
    }
}
