using System.Buffers;
using Coinop.Runtime.Links;

namespace Coinop.Provider.Link;

/// <summary>
/// The agent's end of the market link's TCP connection, under the WebSocket. Reads are buffered: the WebSocket reads a
/// frame's header and its payload separately, and both then come from one receive. Writes pass straight through
/// unless held (<see cref="IWriteHolding"/>): held frames leave in one write, one send syscall and one wake-up of the
/// market's reader instead of one per frame. Writes are serialised here too, because the WebSocket's own control
/// frames (pongs, keep-alive pings) may be written while held frames are being written out.
/// </summary>
internal sealed class LinkStream(Stream inner) : Stream, IWriteHolding
{
    private const int ReadBufferSize = 16 * 1024;

    private readonly byte[] _readBuffer = new byte[ReadBufferSize];
    private readonly SemaphoreSlim _writeGate = new(1, 1);
    private readonly Lock _holdGate = new();
    private readonly ArrayBufferWriter<byte> _held = new(4096);
    private int _readStart;
    private int _readEnd;
    private bool _holding;

    public override bool CanRead => true;

    public override bool CanWrite => true;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public void Hold()
    {
        lock (_holdGate)
        {
            _holding = true;
        }
    }

    public async ValueTask WriteHeldAsync()
    {
        byte[]? bytes = null;
        var length = 0;
        lock (_holdGate)
        {
            _holding = false;
            if (_held.WrittenCount > 0)
            {
                length = _held.WrittenCount;
                bytes = ArrayPool<byte>.Shared.Rent(length);
                _held.WrittenSpan.CopyTo(bytes);
                _held.ResetWrittenCount();
            }
        }

        if (bytes is null)
        {
            return;
        }

        try
        {
            await WriteThroughAsync(bytes.AsMemory(0, length), CancellationToken.None);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(bytes);
        }
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        lock (_holdGate)
        {
            if (_holding)
            {
                _held.Write(buffer.Span);
                return ValueTask.CompletedTask;
            }
        }

        return WriteThroughAsync(buffer, cancellationToken);
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_readStart < _readEnd)
        {
            return ValueTask.FromResult(buffer.Length == 0 ? 0 : TakeBuffered(buffer.Span));
        }

        // Empty (a zero-byte read waits for data) or as large as our buffer: nothing to gain from copying.
        return buffer.Length == 0 || buffer.Length >= ReadBufferSize ? inner.ReadAsync(buffer, cancellationToken) : FillAndTakeAsync(buffer, cancellationToken);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override void Flush() => inner.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
        }

        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        await inner.DisposeAsync();
        await base.DisposeAsync();
    }

    private async ValueTask WriteThroughAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken)
    {
        await _writeGate.WaitAsync(cancellationToken);
        try
        {
            await inner.WriteAsync(buffer, cancellationToken);
        }
        finally
        {
            _writeGate.Release();
        }
    }

    private async ValueTask<int> FillAndTakeAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        var read = await inner.ReadAsync(_readBuffer, cancellationToken);
        if (read == 0)
        {
            return 0;
        }

        _readStart = 0;
        _readEnd = read;
        return TakeBuffered(buffer.Span);
    }

    private int TakeBuffered(Span<byte> destination)
    {
        var count = Math.Min(destination.Length, _readEnd - _readStart);
        _readBuffer.AsSpan(_readStart, count).CopyTo(destination);
        _readStart += count;
        return count;
    }
}
