using System.Buffers;
using System.Net.WebSockets;

namespace Coinop.Runtime.Links;

/// <summary>A frame waiting to go out on a link: a control message, a pooled chunk, or the close.</summary>
public readonly struct OutgoingFrame
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

    /// <summary>Set for the close frame: the link's output is closed after it and nothing more goes out.</summary>
    public WebSocketCloseStatus? CloseStatus { get; }

    public string? CloseReason { get; }

    public ReadOnlyMemory<byte> Payload => _buffer.AsMemory(0, _length);

    public static OutgoingFrame Text(byte[] json) => new(json, json.Length, WebSocketMessageType.Text, false, null, null);

    /// <summary>A binary frame in an <see cref="ArrayPool{T}"/> buffer; returned to the pool once sent or dropped.</summary>
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
