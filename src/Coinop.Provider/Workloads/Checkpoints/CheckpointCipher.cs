using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using NSec.Cryptography;

namespace Coinop.Provider.Workloads.Checkpoints;

/// <summary>
/// The checkpoint's encryption, one 64 KiB chunk at a time: <c>"COINOPCK" ‖ version (1) ‖ salt (32)</c>, then chunks of
/// <c>length (4, big-endian) ‖ ciphertext and tag</c> under ChaCha20-Poly1305 with the subkey HKDF(K, salt). The nonce
/// is the chunk counter and a last-chunk flag, and the header is authenticated with every chunk, so a truncated or
/// reordered archive fails. Neither side ever holds more than one chunk.
/// </summary>
internal static class CheckpointCipher
{
    public const int ChunkSize = 64 * 1024;
    public const byte Version = 1;
    public const int SaltSize = 32;
    public static readonly AeadAlgorithm Aead = AeadAlgorithm.ChaCha20Poly1305;
    private static readonly byte[] Magic = Encoding.ASCII.GetBytes("COINOPCK");
    private static readonly byte[] SubkeyLabel = Encoding.ASCII.GetBytes("coinop/checkpoint/v1");

    public static int HeaderSize => Magic.Length + 1 + SaltSize;

    public static byte[] Header(byte[] salt) => [.. Magic, Version, .. salt];

    /// <summary>Checks the header's magic and version; returns the salt.</summary>
    public static byte[] ReadHeader(ReadOnlySpan<byte> header)
    {
        if (header.Length < HeaderSize || !header[..Magic.Length].SequenceEqual(Magic))
        {
            throw new CheckpointException("not a checkpoint");
        }

        if (header[Magic.Length] != Version)
        {
            throw new CheckpointException($"unsupported checkpoint version {header[Magic.Length]}");
        }

        return header[(Magic.Length + 1)..HeaderSize].ToArray();
    }

    public static Key Subkey(byte[] key, byte[] salt)
    {
        Span<byte> raw = stackalloc byte[Checkpoint.KeySize];
        HKDF.DeriveKey(HashAlgorithmName.SHA256, key, raw, salt, SubkeyLabel);
        try
        {
            return Key.Import(Aead, raw, KeyBlobFormat.RawSymmetricKey);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(raw);
        }
    }

    public static byte[] Nonce(long chunk, bool last)
    {
        var nonce = new byte[Aead.NonceSize];
        BinaryPrimitives.WriteInt64BigEndian(nonce.AsSpan(3), chunk);
        nonce[^1] = last ? (byte)1 : (byte)0;
        return nonce;
    }
}

/// <summary>Encrypts what is written to it into <see cref="CheckpointCipher"/>'s format; <see cref="FinishAsync"/> seals the last chunk.</summary>
internal sealed class SealingStream : Stream
{
    private readonly Stream _inner;
    private readonly Key _subkey;
    private readonly byte[] _header;
    private readonly byte[] _buffer = new byte[CheckpointCipher.ChunkSize];
    private int _filled;
    private long _chunk;
    private bool _started;
    private bool _finished;

    public SealingStream(Stream inner, byte[] key)
    {
        _inner = inner;
        var salt = RandomNumberGenerator.GetBytes(CheckpointCipher.SaltSize);
        _header = CheckpointCipher.Header(salt);
        _subkey = CheckpointCipher.Subkey(key, salt);
    }

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_finished, this);
        while (!data.IsEmpty)
        {
            // A full chunk goes out only once more data follows, so the last chunk is always known to be the last.
            if (_filled == _buffer.Length)
            {
                await SealAsync(last: false, cancellationToken).ConfigureAwait(false);
            }

            var n = Math.Min(data.Length, _buffer.Length - _filled);
            data.Span[..n].CopyTo(_buffer.AsSpan(_filled));
            _filled += n;
            data = data[n..];
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Flush()
    {
    }

    /// <summary>Seals what is buffered as the last chunk. Without it the archive is truncated and will not open.</summary>
    public async Task FinishAsync(CancellationToken cancellationToken)
    {
        if (!_finished)
        {
            await SealAsync(last: true, cancellationToken).ConfigureAwait(false);
            _finished = true;
        }
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _subkey.Dispose();
        }

        base.Dispose(disposing);
    }

    private async Task SealAsync(bool last, CancellationToken cancellationToken)
    {
        if (!_started)
        {
            await _inner.WriteAsync(_header, cancellationToken).ConfigureAwait(false);
            _started = true;
        }

        var sealedChunk = CheckpointCipher.Aead.Encrypt(_subkey, CheckpointCipher.Nonce(_chunk++, last), _header, _buffer.AsSpan(0, _filled));
        var length = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(length, sealedChunk.Length);
        await _inner.WriteAsync(length, cancellationToken).ConfigureAwait(false);
        await _inner.WriteAsync(sealedChunk, cancellationToken).ConfigureAwait(false);
        _filled = 0;
    }
}

/// <summary>
/// Reads the plaintext of a checkpoint chunk by chunk; throws <see cref="CheckpointException"/> at the first chunk that
/// does not authenticate (wrong key, altered) and when the archive ends before its last chunk (truncated).
/// </summary>
internal sealed class OpeningStream : Stream
{
    private readonly Stream _inner;
    private readonly Key _subkey;
    private readonly byte[] _header;
    private readonly byte[] _sealed = new byte[CheckpointCipher.ChunkSize + CheckpointCipher.Aead.TagSize];
    private readonly byte[] _plain = new byte[CheckpointCipher.ChunkSize];
    private readonly byte[] _nextLength = new byte[4];
    private bool _haveNextLength;
    private int _plainLength;
    private int _plainOffset;
    private long _chunk;
    private bool _last;

    public OpeningStream(Stream inner, byte[] key)
    {
        _inner = inner;
        _header = new byte[CheckpointCipher.HeaderSize];
        if (ReadFully(_header) != _header.Length)
        {
            throw new CheckpointException("not a checkpoint");
        }

        _subkey = CheckpointCipher.Subkey(key, CheckpointCipher.ReadHeader(_header));
    }

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        while (_plainOffset == _plainLength)
        {
            if (_last)
            {
                return 0;
            }

            NextChunk();
        }

        var n = Math.Min(buffer.Length, _plainLength - _plainOffset);
        _plain.AsSpan(_plainOffset, n).CopyTo(buffer);
        _plainOffset += n;
        return n;
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => ValueTask.FromResult(Read(buffer.Span));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => Task.FromResult(Read(buffer.AsSpan(offset, count)));

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _subkey.Dispose();
        }

        base.Dispose(disposing);
    }

    private void NextChunk()
    {
        if (!_haveNextLength && ReadFully(_nextLength) != 4)
        {
            throw new CheckpointException("the checkpoint is truncated");
        }

        var length = BinaryPrimitives.ReadInt32BigEndian(_nextLength);
        if (length < CheckpointCipher.Aead.TagSize || length > _sealed.Length || ReadFully(_sealed.AsSpan(0, length)) != length)
        {
            throw new CheckpointException("the checkpoint is truncated or corrupt");
        }

        // The chunk is the last one when nothing follows it.
        var more = ReadFully(_nextLength);
        if (more is > 0 and < 4)
        {
            throw new CheckpointException("the checkpoint is truncated or corrupt");
        }

        _haveNextLength = more == 4;
        _last = !_haveNextLength;
        var plainLength = length - CheckpointCipher.Aead.TagSize;
        if (!CheckpointCipher.Aead.Decrypt(_subkey, CheckpointCipher.Nonce(_chunk++, _last), _header, _sealed.AsSpan(0, length), _plain.AsSpan(0, plainLength)))
        {
            throw new CheckpointException("the checkpoint does not decrypt: wrong key, or it was altered");
        }

        _plainLength = plainLength;
        _plainOffset = 0;
    }

    private int ReadFully(Span<byte> buffer)
    {
        var total = 0;
        while (total < buffer.Length)
        {
            var n = _inner.Read(buffer[total..]);
            if (n == 0)
            {
                break;
            }

            total += n;
        }

        return total;
    }
}
