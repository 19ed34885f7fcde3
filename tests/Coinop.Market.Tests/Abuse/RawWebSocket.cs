using System.Buffers.Binary;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace Coinop.Market.Tests.Abuse;

/// <summary>One frame from the server: its opcode, and for a close frame the status code it carries (null: none).</summary>
public sealed record RawFrame(int Opcode, bool Fin, byte[] Payload)
{
    public const int Continuation = 0, Text = 1, Binary = 2, Close = 8, Ping = 9, Pong = 10;

    public string AsText => Encoding.UTF8.GetString(Payload);

    public int? CloseCode => Opcode == Close && Payload.Length >= 2 ? BinaryPrimitives.ReadUInt16BigEndian(Payload) : null;

    public override string ToString() => Opcode switch
    {
        Close => $"close {CloseCode} {Encoding.UTF8.GetString(Payload.AsSpan(Math.Min(2, Payload.Length)))}",
        Text => Payload.Length > 300 ? AsText[..300] + "…" : AsText,
        _ => $"opcode {Opcode}, {Payload.Length} bytes",
    };
}

/// <summary>
/// A WebSocket client written frame by frame over a plain TCP socket, so a test can send what no well-behaved client
/// library would: invalid UTF-8 in a text frame, unmasked or oversized control frames, reserved bits, a message cut off
/// by a close, and never answer a close or read at all. It reads the server's frames as they are (pings answered).
/// </summary>
public sealed class RawWebSocket : IAsyncDisposable
{
    private readonly TcpClient _tcp;
    private readonly NetworkStream _stream;

    private RawWebSocket(TcpClient tcp)
    {
        _tcp = tcp;
        _stream = tcp.GetStream();
    }

    /// <summary>Opens a TCP connection to <paramref name="httpUrl"/>'s host and upgrades it on <paramref name="path"/>; throws unless the answer is a 101.</summary>
    public static async Task<RawWebSocket> ConnectAsync(string httpUrl, string path, CancellationToken cancellationToken)
    {
        var uri = new Uri(httpUrl);
        var tcp = new TcpClient { NoDelay = true };
        await tcp.ConnectAsync(uri.Host, uri.Port, cancellationToken);
        var socket = new RawWebSocket(tcp);
        var key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));
        var request = $"GET {path} HTTP/1.1\r\nHost: {uri.Authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n";
        await socket._stream.WriteAsync(Encoding.ASCII.GetBytes(request), cancellationToken);
        var head = new List<byte>();
        var one = new byte[1];
        while (head.Count < 4 || head[^4] != '\r' || head[^3] != '\n' || head[^2] != '\r' || head[^1] != '\n')
        {
            if (await socket._stream.ReadAsync(one, cancellationToken) == 0)
            {
                throw new IOException("the server closed the connection before answering the upgrade");
            }

            head.Add(one[0]);
        }

        var status = Encoding.ASCII.GetString([.. head]);
        if (!status.StartsWith("HTTP/1.1 101", StringComparison.Ordinal))
        {
            await socket.DisposeAsync();
            throw new IOException("the upgrade was refused: " + status);
        }

        return socket;
    }

    /// <summary>Sends one frame (masked, as a client must, unless <paramref name="masked"/> is false).</summary>
    public async Task SendFrameAsync(int opcode, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken, bool fin = true, bool masked = true, int reserved = 0)
    {
        var header = new List<byte> { (byte)((fin ? 0x80 : 0) | (reserved << 4) | opcode) };
        var maskBit = masked ? 0x80 : 0;
        if (payload.Length < 126)
        {
            header.Add((byte)(maskBit | payload.Length));
        }
        else if (payload.Length <= ushort.MaxValue)
        {
            header.Add((byte)(maskBit | 126));
            header.AddRange([(byte)(payload.Length >> 8), (byte)payload.Length]);
        }
        else
        {
            header.Add((byte)(maskBit | 127));
            var length = new byte[8];
            BinaryPrimitives.WriteUInt64BigEndian(length, (ulong)payload.Length);
            header.AddRange(length);
        }

        var body = payload.ToArray();
        if (masked)
        {
            var mask = RandomNumberGenerator.GetBytes(4);
            header.AddRange(mask);
            for (var i = 0; i < body.Length; i++)
            {
                body[i] ^= mask[i % 4];
            }
        }

        await _stream.WriteAsync(header.ToArray(), cancellationToken);
        await _stream.WriteAsync(body, cancellationToken);
    }

    /// <summary>Sends raw bytes as they are (a frame header that lies about its length, say).</summary>
    public async Task SendBytesAsync(byte[] bytes, CancellationToken cancellationToken) => await _stream.WriteAsync(bytes, cancellationToken);

    public Task SendTextAsync(string text, CancellationToken cancellationToken) => SendFrameAsync(RawFrame.Text, Encoding.UTF8.GetBytes(text), cancellationToken);

    /// <summary>The server's next data or close frame (pings are answered, pongs skipped), or null when the connection ended without one.</summary>
    public async Task<RawFrame?> ReceiveAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            RawFrame? frame;
            try
            {
                frame = await ReadFrameAsync(cancellationToken);
            }
            catch (IOException)
            {
                return null; // reset
            }

            if (frame is null || frame.Opcode is not (RawFrame.Ping or RawFrame.Pong))
            {
                return frame;
            }

            if (frame.Opcode == RawFrame.Ping)
            {
                await SendFrameAsync(RawFrame.Pong, frame.Payload, cancellationToken);
            }
        }
    }

    /// <summary>Whether the server ended the TCP connection (reads until the end, discarding frames, after a close).</summary>
    public async Task<bool> EndedAsync(CancellationToken cancellationToken)
    {
        while (await ReceiveAsync(cancellationToken) is not null)
        {
        }

        return true;
    }

    /// <summary>Resets the connection (RST, no close handshake).</summary>
    public void Abort()
    {
        _tcp.Client.LingerState = new LingerOption(true, 0);
        _tcp.Client.Close();
    }

    public ValueTask DisposeAsync()
    {
        _tcp.Dispose();
        return ValueTask.CompletedTask;
    }

    private async Task<RawFrame?> ReadFrameAsync(CancellationToken cancellationToken)
    {
        var head = new byte[2];
        if (!await ReadExactlyAsync(head, cancellationToken))
        {
            return null;
        }

        long length = head[1] & 0x7f;
        if (length == 126)
        {
            var ext = new byte[2];
            if (!await ReadExactlyAsync(ext, cancellationToken)) return null;
            length = BinaryPrimitives.ReadUInt16BigEndian(ext);
        }
        else if (length == 127)
        {
            var ext = new byte[8];
            if (!await ReadExactlyAsync(ext, cancellationToken)) return null;
            length = (long)BinaryPrimitives.ReadUInt64BigEndian(ext);
        }

        if (length > 16 * 1024 * 1024)
        {
            throw new InvalidDataException($"the server sent a frame of {length} bytes");
        }

        var payload = new byte[length];
        return await ReadExactlyAsync(payload, cancellationToken) ? new RawFrame(head[0] & 0x0f, (head[0] & 0x80) != 0, payload) : null;
    }

    private async Task<bool> ReadExactlyAsync(byte[] buffer, CancellationToken cancellationToken)
    {
        try
        {
            await _stream.ReadExactlyAsync(buffer, cancellationToken);
            return true;
        }
        catch (EndOfStreamException)
        {
            return false;
        }
    }
}
