using System.Buffers.Binary;
using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using NSec.Cryptography;

namespace Coinop.Provider.Workloads.Checkpoints;

/// <summary>
/// A copy's state directory as an encrypted archive: tar, gzip, then ChaCha20-Poly1305 in 64 KiB chunks under the
/// workload's key K. Layout: <c>"COINOPCK" ‖ version (1) ‖ salt (32)</c>, then chunks of
/// <c>length (4, big-endian) ‖ ciphertext and tag</c>. Each checkpoint uses its own subkey, HKDF(K, salt), so nonces
/// (chunk counter plus a last-chunk flag) never repeat under one key; the header is authenticated with every chunk,
/// and the flag makes a truncated archive fail instead of restoring part of the state.
/// </summary>
public static class Checkpoint
{
    public const int KeySize = 32;
    private const int ChunkSize = 64 * 1024;
    private const int SaltSize = 32;
    private const byte Version = 1;
    private static readonly byte[] Magic = Encoding.ASCII.GetBytes("COINOPCK");
    private static readonly byte[] SubkeyLabel = Encoding.ASCII.GetBytes("coinop/checkpoint/v1");
    private static readonly AeadAlgorithm Aead = AeadAlgorithm.ChaCha20Poly1305;

    /// <summary>Archives and encrypts <paramref name="stateDir"/>. Symlinks are stored as links, never followed.</summary>
    public static async Task<byte[]> CreateAsync(string stateDir, byte[] key, CancellationToken cancellationToken)
    {
        CheckKey(key);
        using var plain = new MemoryStream();
        await using (var gzip = new GZipStream(plain, CompressionLevel.Fastest, leaveOpen: true))
        {
            await TarFile.CreateFromDirectoryAsync(stateDir, gzip, includeBaseDirectory: false, cancellationToken).ConfigureAwait(false);
        }

        var salt = RandomNumberGenerator.GetBytes(SaltSize);
        byte[] header = [.. Magic, Version, .. salt];
        using var subkey = Subkey(key, salt);
        var data = plain.GetBuffer().AsSpan(0, (int)plain.Length);
        using var output = new MemoryStream();
        output.Write(header);
        var count = Math.Max(1, (data.Length + ChunkSize - 1) / ChunkSize);
        Span<byte> length = stackalloc byte[4];
        for (var i = 0; i < count; i++)
        {
            var chunk = data.Slice(i * ChunkSize, Math.Min(ChunkSize, data.Length - i * ChunkSize));
            var sealedChunk = Aead.Encrypt(subkey, Nonce(i, i == count - 1), header, chunk);
            BinaryPrimitives.WriteInt32BigEndian(length, sealedChunk.Length);
            output.Write(length);
            output.Write(sealedChunk);
        }

        return output.ToArray();
    }

    /// <summary>
    /// Decrypts and unpacks a checkpoint into <paramref name="stateDir"/> (which must be empty or missing). Throws
    /// <see cref="CheckpointException"/> for a wrong key or an altered or truncated archive, before writing anything.
    /// Only regular files, folders and symlinks are restored; symlinks come last, so no file is written through one.
    /// </summary>
    public static async Task RestoreAsync(byte[] checkpoint, byte[] key, string stateDir, CancellationToken cancellationToken)
    {
        CheckKey(key);
        var plain = Decrypt(checkpoint, key);
        Directory.CreateDirectory(stateDir);
        if (Directory.EnumerateFileSystemEntries(stateDir).Any())
        {
            throw new CheckpointException("the state directory to restore into is not empty");
        }

        var root = Path.GetFullPath(stateDir) + Path.DirectorySeparatorChar;
        var links = new List<(string Path, string Target)>();
        await using var gzip = new GZipStream(new MemoryStream(plain), CompressionMode.Decompress);
        await using var reader = new TarReader(gzip);
        try
        {
            while (await reader.GetNextEntryAsync(copyData: false, cancellationToken).ConfigureAwait(false) is { } entry)
            {
                var path = Path.GetFullPath(Path.Combine(root, entry.Name));
                if (!path.StartsWith(root, StringComparison.Ordinal) && path + Path.DirectorySeparatorChar != root)
                {
                    throw new CheckpointException($"archive entry '{entry.Name}' points outside the state directory");
                }

                switch (entry.EntryType)
                {
                    case TarEntryType.Directory:
                        Directory.CreateDirectory(path);
                        break;
                    case TarEntryType.RegularFile or TarEntryType.V7RegularFile:
                        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                        await entry.ExtractToFileAsync(path, overwrite: false, cancellationToken).ConfigureAwait(false);
                        break;
                    case TarEntryType.SymbolicLink:
                        links.Add((path, entry.LinkName));
                        break;
                    default:
                        throw new CheckpointException($"archive entry '{entry.Name}' is a {entry.EntryType}, which checkpoints do not hold");
                }
            }
        }
        catch (InvalidDataException ex)
        {
            throw new CheckpointException("the archive is corrupt: " + ex.Message, ex);
        }

        foreach (var (path, target) in links)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.CreateSymbolicLink(path, target);
        }
    }

    private static byte[] Decrypt(byte[] checkpoint, byte[] key)
    {
        var headerLength = Magic.Length + 1 + SaltSize;
        if (checkpoint.Length < headerLength || !checkpoint.AsSpan(0, Magic.Length).SequenceEqual(Magic))
        {
            throw new CheckpointException("not a checkpoint");
        }

        if (checkpoint[Magic.Length] != Version)
        {
            throw new CheckpointException($"unsupported checkpoint version {checkpoint[Magic.Length]}");
        }

        var header = checkpoint.AsSpan(0, headerLength);
        using var subkey = Subkey(key, header[(Magic.Length + 1)..].ToArray());
        using var output = new MemoryStream();
        var offset = headerLength;
        for (var i = 0; ; i++)
        {
            if (checkpoint.Length - offset < 4)
            {
                throw new CheckpointException("the checkpoint is truncated");
            }

            var length = BinaryPrimitives.ReadInt32BigEndian(checkpoint.AsSpan(offset));
            offset += 4;
            if (length < Aead.TagSize || length > ChunkSize + Aead.TagSize || checkpoint.Length - offset < length)
            {
                throw new CheckpointException("the checkpoint is truncated or corrupt");
            }

            var sealedChunk = checkpoint.AsSpan(offset, length);
            offset += length;
            var last = offset == checkpoint.Length;
            var chunk = new byte[length - Aead.TagSize];
            if (!Aead.Decrypt(subkey, Nonce(i, last), header, sealedChunk, chunk))
            {
                throw new CheckpointException("the checkpoint does not decrypt: wrong key, or it was altered");
            }

            output.Write(chunk);
            if (last)
            {
                return output.ToArray();
            }
        }
    }

    private static Key Subkey(byte[] key, byte[] salt)
    {
        Span<byte> raw = stackalloc byte[KeySize];
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

    private static byte[] Nonce(int chunk, bool last)
    {
        var nonce = new byte[Aead.NonceSize];
        BinaryPrimitives.WriteInt64BigEndian(nonce.AsSpan(3), chunk);
        nonce[^1] = last ? (byte)1 : (byte)0;
        return nonce;
    }

    private static void CheckKey(byte[] key)
    {
        if (key.Length != KeySize)
        {
            throw new ArgumentException($"A checkpoint key is {KeySize} bytes.", nameof(key));
        }
    }
}

/// <summary>A checkpoint could not be restored: wrong key, tampered, truncated or not a checkpoint.</summary>
public sealed class CheckpointException(string message, Exception? inner = null) : Exception(message, inner);
