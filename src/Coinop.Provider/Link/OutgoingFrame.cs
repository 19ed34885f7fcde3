using System.Buffers;
using System.Net.WebSockets;

namespace Coinop.Provider.Link;

/// <summary>A frame waiting for the session's writer: a control message, a pooled job chunk, or the close.</summary>
internal readonly struct OutgoingFrame
{
    private readonly byte[]? _buffer;
    private readonly int _length;
    private readonly bool _pooled;

    private OutgoingFrame(byte[]? buffer, int length, WebSocketMessageType type, bool pooled, WebSocketCloseStatus? close, string? closeReason)
    {
        _buffer = buffer;
        _length = length;
        Type = type;
        _pooled = pooled;
        CloseStatus = close;
        CloseReason = closeReason;
    }

    public WebSocketMessageType Type { get; }

    /// <summary>Set for the close frame: the writer closes the socket's output and stops.</summary>
    public WebSocketCloseStatus? CloseStatus { get; }

    public string? CloseReason { get; }

    public ReadOnlyMemory<byte> Payload => _buffer.AsMemory(0, _length);

    public static OutgoingFrame Text(byte[] json) => new(json, json.Length, WebSocketMessageType.Text, false, null, null);

    /// <summary>A chunk frame in an <see cref="ArrayPool{T}"/> buffer; the writer returns it after sending.</summary>
    public static OutgoingFrame Chunk(byte[] pooled, int length) => new(pooled, length, WebSocketMessageType.Binary, true, null, null);

    public static OutgoingFrame Close(WebSocketCloseStatus status, string reason) => new(null, 0, WebSocketMessageType.Close, false, status, reason);

    public void Release()
    {
        if (_pooled && _buffer is not null)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
        }
    }
}

/// <summary>How a market session ended, which decides the reconnect delay.</summary>
internal sealed record SessionOutcome(bool Authenticated, bool Planned, string Reason);
