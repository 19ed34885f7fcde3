using System.Buffers;
using System.Net.WebSockets;
using Coinop.Core.Protocol;
using Coinop.Runtime.Links;

namespace Coinop.Market.Gateway;

/// <summary>
/// The transport of one provider link: a <see cref="FrameWriter"/> that owns the send side (frames sent in order, by
/// the caller when the link is idle, else from a bounded queue), and the reader loop that receives whole messages
/// into a pooled buffer and hands each to its <see cref="ProviderSession"/>. Nothing the provider sends can grow
/// memory without bound: a message over the size limits ends the link as a protocol error.
/// </summary>
internal sealed class ProviderSocket : IDisposable
{
    public const int MaxBinaryPayload = 64 * 1024;
    private const int OutgoingQueueFrames = 1024;

    private readonly WebSocket _socket;
    private readonly TimeProvider _time;
    private readonly int _maxTextFrame;
    private readonly FrameWriter _frames;
    private readonly CancellationTokenSource _closed = new();
    private Task _writer = Task.CompletedTask;

    public ProviderSocket(WebSocket socket, TimeProvider time, int maxTextFrame)
    {
        _socket = socket;
        _time = time;
        _maxTextFrame = maxTextFrame;
        _frames = new FrameWriter(OutgoingQueueFrames, SendFrameAsync, socket.Abort);
    }

    /// <summary>True once the link has ended: nothing sent now reaches the provider.</summary>
    public bool Ended => _closed.IsCancellationRequested;

    /// <summary>Sends or queues <paramref name="message"/>, waiting for room in the queue; false when the link is closing.</summary>
    public ValueTask<bool> SendAsync(ProtocolMessage message, CancellationToken cancellationToken) =>
        _frames.SendAsync(OutgoingFrame.Text(ProtocolJson.Serialize(message)), cancellationToken);

    /// <summary>Queues a small control frame without waiting; false when the queue is full or the link closing.</summary>
    public bool TrySend(ProtocolMessage message) => _frames.TrySend(OutgoingFrame.Text(ProtocolJson.Serialize(message)));

    /// <summary>Sends a close frame after the frames already queued; nothing is sent after it.</summary>
    public void Close(WebSocketCloseStatus status, string reason)
    {
        _frames.TrySend(OutgoingFrame.Close(status, reason));
        _frames.Complete();
    }

    /// <summary>Starts the writer loop; <see cref="EndAsync"/> waits for it.</summary>
    public void StartWriter() => _writer = WriteLoopAsync();

    /// <summary>
    /// Receives messages into <paramref name="session"/> until the socket closes, the session's message handler reports a
    /// protocol violation, or the link ends. Returns how the link ended, for logs ("protocol: …" for a violation).
    /// </summary>
    public async Task<string> ReceiveAsync(ProviderSession session, CancellationToken cancellationToken)
    {
        using var link = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _closed.Token);
        try
        {
            return await ReadLoopAsync(session, link.Token);
        }
        catch (OperationCanceledException)
        {
            return "closed";
        }
        catch (WebSocketException ex)
        {
            return "socket error: " + ex.WebSocketErrorCode;
        }
    }

    /// <summary>Waits for the writer to send what is queued (the close frame last), then ends the link.</summary>
    public async Task EndAsync()
    {
        try
        {
            await _writer.WaitAsync(TimeSpan.FromSeconds(5), _time, CancellationToken.None);
        }
        catch (TimeoutException)
        {
            await _closed.CancelAsync(); // a peer that stopped reading must not hold the writer forever
            await _writer;
        }

        await _closed.CancelAsync();
    }

    private async Task<string> ReadLoopAsync(ProviderSession session, CancellationToken cancellationToken)
    {
        byte[]? buffer = null;
        try
        {
            while (true)
            {
                // An idle link holds no receive buffer (10,000 idle providers would pin 160 MB): a zero-byte read waits for
                // the next message and a buffer is rented once data is there, kept while messages follow back to back.
                var waiting = _socket.ReceiveAsync(Memory<byte>.Empty, cancellationToken);
                if (!waiting.IsCompleted && buffer is not null)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = null;
                }

                var result = await waiting;
                buffer ??= ArrayPool<byte>.Shared.Rent(16 * 1024);
                var length = 0;
                while (!result.EndOfMessage)
                {
                    if (length == buffer.Length)
                    {
                        var limit = _maxTextFrame + ChunkFrame.HeaderSize;
                        if (buffer.Length >= limit)
                        {
                            return "protocol: frame too large";
                        }

                        var bigger = ArrayPool<byte>.Shared.Rent(Math.Min(buffer.Length * 2, limit));
                        buffer.AsSpan(0, length).CopyTo(bigger);
                        ArrayPool<byte>.Shared.Return(buffer);
                        buffer = bigger;
                    }

                    result = await _socket.ReceiveAsync(buffer.AsMemory(length), cancellationToken);
                    length += result.Count;
                    if (result.MessageType == WebSocketMessageType.Binary && length > MaxBinaryPayload + ChunkFrame.HeaderSize)
                    {
                        return "protocol: binary frame too large";
                    }
                }

                if (result.MessageType == WebSocketMessageType.Close)
                {
                    return "closed by provider";
                }

                if (session.OnMessage(result.MessageType, buffer.AsSpan(0, length)) is { } error)
                {
                    return "protocol: " + error;
                }

                if (buffer.Length > 64 * 1024)
                {
                    // A large text frame (a big capabilities list) should not pin a large buffer for the session's life.
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = null;
                }
            }
        }
        finally
        {
            if (buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
    }

    private async Task WriteLoopAsync()
    {
        try
        {
            await _frames.RunAsync();
        }
        finally
        {
            // Once our close frame is out (or could not be sent), a silent peer must not keep the reader waiting.
            _ = CancelReaderAfterAsync(TimeSpan.FromSeconds(5));
        }
    }

    private async ValueTask SendFrameAsync(OutgoingFrame frame)
    {
        if (frame.CloseStatus is { } status)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2), _time);
            if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                await _socket.CloseOutputAsync(status, frame.CloseReason, timeout.Token);
            }

            return;
        }

        await _socket.SendAsync(frame.Payload, frame.Type, endOfMessage: true, _closed.Token);
    }

    private async Task CancelReaderAfterAsync(TimeSpan delay)
    {
        try
        {
            await Task.Delay(delay, _time, _closed.Token);
            await _closed.CancelAsync();
        }
        catch (OperationCanceledException)
        {
        }
        catch (ObjectDisposedException)
        {
        }
    }

    public void Dispose() => _closed.Dispose();
}
