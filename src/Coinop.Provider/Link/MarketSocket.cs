using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using Coinop.Core.Protocol;
using Coinop.Runtime.Links;

namespace Coinop.Provider.Link;

/// <summary>
/// The transport of one market link: the WebSocket over a TCP connection of our own (a <see cref="LinkStream"/>, so
/// frames sent together leave in one write), whole messages received into one growing buffer, and a
/// <see cref="FrameWriter"/> that owns the send side: frames go out in order, sent by the caller when the link is idle
/// and queued for its writer loop otherwise.
/// </summary>
internal sealed class MarketSocket : IDisposable
{
    private const int MaxIncomingMessage = 64 * 1024 * 1024;
    private const int OutgoingCapacity = 256;

    /// <summary>
    /// The link's WebSocket keep-alive (an unsolicited pong), which only keeps NAT and load-balancer mappings open when
    /// heartbeats are far apart (every TTL/2: up to 300 s on a market with many providers); 120 s is half the shortest
    /// common idle timeout (4 min). ClientWebSocket's default of 30 s made these pongs two thirds of the frames a market
    /// with 10,000 idle providers receives (docs/benchmarks.md).
    /// </summary>
    internal static readonly TimeSpan KeepAliveInterval = TimeSpan.FromSeconds(120);

    private readonly ClientWebSocket _socket = new();
    private readonly HttpMessageInvoker _dialer;
    private readonly FrameWriter _frames;
    private readonly CancellationToken _end;
    private LinkStream? _link;
    private byte[] _receiveBuffer = new byte[16 * 1024];
    private Task _writer = Task.CompletedTask;

    /// <param name="end">Ends the session: cancels a send in progress.</param>
    public MarketSocket(string agentVersion, CancellationToken end)
    {
        _end = end;
        // The session's end aborts the socket, which fails a send in progress and every later one. Sends themselves
        // pass no token: a cancellable send takes the WebSocket's slower path and registers with the token per frame.
        end.UnsafeRegister(static s => ((ClientWebSocket)s!).Abort(), _socket);
        _dialer = new HttpMessageInvoker(new SocketsHttpHandler { ConnectCallback = DialAsync, AutomaticDecompression = DecompressionMethods.None });
        _frames = new FrameWriter(OutgoingCapacity, SendFrameAsync, _socket.Abort, new HeldWrites(this));
        _socket.Options.SetRequestHeader("User-Agent", "coinop-provider/" + agentVersion);
        _socket.Options.KeepAliveInterval = KeepAliveInterval;
    }

    /// <summary>Opens the WebSocket and starts the writer loop.</summary>
    public async Task ConnectAsync(Uri url, CancellationToken ct)
    {
        await _socket.ConnectAsync(url, _dialer, ct);
        _writer = _frames.RunAsync();
    }

    /// <summary>Sends or queues a frame; false (and the frame released) when the link is gone.</summary>
    public ValueTask<bool> SendAsync(OutgoingFrame frame, CancellationToken ct = default) => _frames.SendAsync(frame, ct);

    /// <summary>Sends or queues two frames in order, back to back when the link is idle.</summary>
    public ValueTask<bool> SendAsync(OutgoingFrame first, OutgoingFrame then) => _frames.SendAsync(first, then);

    /// <summary>Sends a chunk frame; a <paramref name="droppable"/> one is dropped (false) rather than waiting behind a half-full queue.</summary>
    public async ValueTask<bool> SendChunkAsync(byte kind, Guid id, long epoch, byte? lead, ReadOnlyMemory<byte> data, bool droppable,
        CancellationToken cancellationToken)
    {
        var length = ChunkFrame.HeaderSize + (lead is null ? 0 : 1) + data.Length;
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(length);
        ChunkFrame.WriteHeader(buffer, kind, id, epoch);
        var offset = ChunkFrame.HeaderSize;
        if (lead is { } b)
        {
            buffer[offset++] = b;
        }

        data.Span.CopyTo(buffer.AsSpan(offset));
        var frame = OutgoingFrame.Chunk(buffer, length);
        if (!droppable)
        {
            return await SendAsync(frame, cancellationToken);
        }

        // Output never holds up heartbeats: with the queue half full it is dropped instead.
        if (_frames.Queued < OutgoingCapacity / 2)
        {
            return _frames.TrySend(frame);
        }

        frame.Release();
        return false;
    }

    /// <summary>Receives one whole message (or the market's close).</summary>
    public async Task<MarketFrame> ReceiveAsync(CancellationToken ct)
    {
        if (_receiveBuffer.Length > 64 * 1024)
        {
            // One big job request must not pin a large buffer for the rest of the session. A new array, so the last
            // message's bytes are never overwritten under whoever still reads them.
            _receiveBuffer = new byte[16 * 1024];
        }

        var length = 0;
        while (true)
        {
            if (length == _receiveBuffer.Length)
            {
                if (_receiveBuffer.Length >= MaxIncomingMessage)
                {
                    await SendAsync(OutgoingFrame.Close(WebSocketCloseStatus.MessageTooBig, "message too big"), CancellationToken.None);
                    throw new WebSocketException($"the market sent a message over {MaxIncomingMessage} bytes");
                }

                Array.Resize(ref _receiveBuffer, _receiveBuffer.Length * 2);
            }

            var result = await _socket.ReceiveAsync(_receiveBuffer.AsMemory(length), ct);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                return new MarketFrame(WebSocketMessageType.Close, default, true, _socket.CloseStatus, _socket.CloseStatusDescription);
            }

            length += result.Count;
            if (result.EndOfMessage)
            {
                return new MarketFrame(result.MessageType, _receiveBuffer.AsMemory(0, length), false, null, null);
            }
        }
    }

    /// <summary>Sends what is queued (a close frame last, if one was queued) and stops the writer loop.</summary>
    public async Task CompleteAsync()
    {
        _frames.Complete();
        await _writer;
    }

    public void Abort() => _socket.Abort();

    public void Dispose()
    {
        _socket.Dispose();
        _dialer.Dispose();
    }

    private async ValueTask<Stream> DialAsync(SocketsHttpConnectionContext context, CancellationToken ct)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(context.DnsEndPoint, ct);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        var link = new LinkStream(new NetworkStream(socket, ownsSocket: true));
        _link = link;
        return link;
    }

    private async ValueTask SendFrameAsync(OutgoingFrame frame)
    {
        if (frame.CloseStatus is { } status)
        {
            if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                await _socket.CloseOutputAsync(status, frame.CloseReason, _end);
            }

            return;
        }

        await _socket.SendAsync(frame.Payload, frame.Type, endOfMessage: true, CancellationToken.None);
    }

    /// <summary>Holds writes on the link's connection once it is dialled (a frame sent before that cannot be held, and needs not be).</summary>
    private sealed class HeldWrites(MarketSocket socket) : IWriteHolding
    {
        private LinkStream? _holding;

        public void Hold()
        {
            _holding = socket._link;
            _holding?.Hold();
        }

        public ValueTask WriteHeldAsync() => _holding?.WriteHeldAsync() ?? ValueTask.CompletedTask;
    }
}

/// <summary>One whole message from the market, or its close (with the status and description it gave).</summary>
internal readonly record struct MarketFrame(WebSocketMessageType Type, ReadOnlyMemory<byte> Payload, bool Close, WebSocketCloseStatus? CloseStatus, string? CloseDescription)
{
    /// <summary>How the session ended when this is the market's close: planned when it closed for a deploy.</summary>
    public SessionOutcome Closed(bool authenticated)
    {
        var planned = CloseStatus == (WebSocketCloseStatus)CloseCodes.GoingAway && CloseDescription == CloseCodes.DrainDeploy;
        var code = CloseStatus is { } status ? ((int)status).ToString(System.Globalization.CultureInfo.InvariantCulture) : "none";
        return new SessionOutcome(authenticated, planned, $"the market closed the connection ({code} {CloseDescription})".TrimEnd());
    }
}
