using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;

namespace Coinop.Provider.Workloads.Checkpoints;

/// <summary>
/// A copy's state directory as an encrypted archive: tar, gzip, then <see cref="CheckpointCipher"/> (ChaCha20-Poly1305
/// in 64 KiB chunks under a per-checkpoint subkey of the workload's key K). Both ways stream: the archive is written to
/// a stream as the folder is walked and never held whole in memory, with a hard cap on its size; a restore first
/// authenticates every chunk, then unpacks, with caps on what it unpacks. The folder is walked and written through
/// directory descriptors only (<see cref="StateArchive"/>): links are kept as links, never followed.
/// </summary>
public static class Checkpoint
{
    public const int KeySize = 32;

    /// <summary>Entries a restore accepts at most.</summary>
    public const int MaxEntries = 100_000;

    /// <summary>
    /// Archives and encrypts <paramref name="stateDir"/> into <paramref name="output"/>; throws
    /// <see cref="CheckpointTooLargeException"/> as soon as the archive would pass <paramref name="maxBytes"/>.
    /// </summary>
    public static async Task<CheckpointSummary> WriteAsync(string stateDir, byte[] key, Stream output, long maxBytes, CancellationToken cancellationToken)
    {
        CheckKey(key);
        await using var capped = new CappedStream(output, maxBytes);
        await using (var sealing = new SealingStream(capped, key))
        {
            await using (var gzip = new GZipStream(sealing, CompressionLevel.Fastest, leaveOpen: true))
            {
                await using var tar = new TarWriter(gzip, TarEntryFormat.Pax, leaveOpen: true);
                await StateArchive.WriteAsync(stateDir, tar, cancellationToken).ConfigureAwait(false);
            }

            await sealing.FinishAsync(cancellationToken).ConfigureAwait(false);
        }

        return new CheckpointSummary(capped.Written, Convert.ToHexStringLower(capped.Hash()));
    }

    /// <summary>
    /// Decrypts and unpacks a checkpoint into <paramref name="stateDir"/> (an existing, empty folder), its files owned by
    /// <paramref name="uid"/>:<paramref name="gid"/> when given. A wrong key or an altered or truncated archive throws
    /// <see cref="CheckpointException"/> before anything is written; an archive that breaks a rule (a link or '..' to
    /// climb out, more than <paramref name="maxBytes"/> of data) throws too and leaves the folder empty.
    /// </summary>
    public static async Task RestoreAsync(Stream checkpoint, byte[] key, string stateDir, long maxBytes, int? uid, int? gid, CancellationToken cancellationToken)
    {
        CheckKey(key);
        if (!checkpoint.CanSeek)
        {
            throw new ArgumentException("a checkpoint is restored from a seekable stream (it is read twice)", nameof(checkpoint));
        }

        var start = checkpoint.Position;
        await using (var verify = new OpeningStream(checkpoint, key))
        {
            await verify.CopyToAsync(Stream.Null, cancellationToken).ConfigureAwait(false);
        }

        checkpoint.Position = start;
        try
        {
            await using var plain = new OpeningStream(checkpoint, key);
            await using var gzip = new GZipStream(plain, CompressionMode.Decompress);
            await using var tar = new TarReader(gzip);
            await StateArchive.RestoreAsync(tar, stateDir, uid, gid, maxBytes, MaxEntries, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is CheckpointException or InvalidDataException or FormatException or IOException)
        {
            using (var dir = Sandboxes.Posix.OpenDirectory(stateDir))
            {
                Sandboxes.HostTree.Clear(dir);
            }

            throw ex as CheckpointException ?? new CheckpointException("the checkpoint cannot be restored: " + ex.Message, ex);
        }
    }

    private static void CheckKey(byte[] key)
    {
        if (key.Length != KeySize)
        {
            throw new ArgumentException($"A checkpoint key is {KeySize} bytes.", nameof(key));
        }
    }

    /// <summary>Counts and hashes what passes, and refuses to pass more than the cap.</summary>
    private sealed class CappedStream(Stream inner, long max) : Stream
    {
        private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

        public long Written { get; private set; }

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => Written;

        public override long Position { get => Written; set => throw new NotSupportedException(); }

        public byte[] Hash() => _hash.GetHashAndReset();

        public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (Written + buffer.Length > max)
            {
                throw new CheckpointTooLargeException(max);
            }

            await inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
            _hash.AppendData(buffer.Span);
            Written += buffer.Length;
        }

        public override void Flush() => inner.Flush();

        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _hash.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}

/// <summary>A written checkpoint: its size in bytes and its SHA-256 (lowercase hex), as the market checks them.</summary>
public sealed record CheckpointSummary(long Length, string Sha256);

/// <summary>A checkpoint could not be restored: wrong key, tampered, truncated, not a checkpoint, or against the rules.</summary>
public class CheckpointException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>The state folder does not fit in a checkpoint of the allowed size; nothing was uploaded.</summary>
public sealed class CheckpointTooLargeException(long max) : CheckpointException($"the checkpoint would be larger than {max} bytes");
