using System.Formats.Tar;
using Coinop.Provider.Workloads.Sandboxes;
using Microsoft.Win32.SafeHandles;

namespace Coinop.Provider.Workloads.Checkpoints;

/// <summary>
/// A copy's state folder to and from tar, walked and written only through open directory descriptors
/// (<see cref="Posix"/>): links are archived and restored as links and never followed, a directory swapped for a link
/// mid-walk is skipped, and anything but folders, regular files and links is left out. So a copy racing renames and
/// links against a checkpoint can only ever get its own files into it.
/// </summary>
internal static class StateArchive
{
    private const UnixFileMode Permissions = (UnixFileMode)0x1FF;

    /// <summary>Writes every folder, regular file and link below <paramref name="stateDir"/> to <paramref name="tar"/>.</summary>
    public static async Task WriteAsync(string stateDir, TarWriter tar, CancellationToken cancellationToken)
    {
        using var root = Posix.OpenDirectory(stateDir);
        await WriteBelowAsync(root, "", tar, 1, cancellationToken).ConfigureAwait(false);
    }

    private static async Task WriteBelowAsync(SafeFileHandle dir, string prefix, TarWriter tar, int depth, CancellationToken cancellationToken)
    {
        var names = Posix.List(dir);
        names.Sort(StringComparer.Ordinal);
        foreach (var name in names)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (HostTree.TryStat(dir, name) is not { } status)
            {
                continue;
            }

            var path = prefix + name;
            if (status.IsLink)
            {
                string target;
                try
                {
                    target = Posix.ReadLinkAt(dir, name);
                }
                catch (IOException)
                {
                    continue; // replaced since it was listed
                }

                await tar.WriteEntryAsync(new PaxTarEntry(TarEntryType.SymbolicLink, path) { LinkName = target }, cancellationToken).ConfigureAwait(false);
            }
            else if (status.IsDirectory)
            {
                using var sub = HostTree.TryOpenDirectory(dir, name, depth);
                if (sub is null)
                {
                    continue;
                }

                var opened = Posix.Stat(sub);
                await tar.WriteEntryAsync(new PaxTarEntry(TarEntryType.Directory, path + "/") { Mode = Mode(opened), ModificationTime = Time(opened) }, cancellationToken).ConfigureAwait(false);
                await WriteBelowAsync(sub, path + "/", tar, depth + 1, cancellationToken).ConfigureAwait(false);
            }
            else if (status.IsRegular)
            {
                await WriteFileAsync(dir, name, path, tar, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private static async Task WriteFileAsync(SafeFileHandle dir, string name, string path, TarWriter tar, CancellationToken cancellationToken)
    {
        SafeFileHandle file;
        try
        {
            file = Posix.OpenReadAt(dir, name);
        }
        catch (IOException)
        {
            return; // a link, a socket or gone since it was listed
        }

        using (file)
        {
            // What was opened counts, not what the listing said: it may have been swapped in between.
            var status = Posix.Stat(file);
            if (!status.IsRegular)
            {
                return;
            }

            await using var content = new FileStream(file, FileAccess.Read, bufferSize: 0);
            await using var data = new FixedLengthStream(content, status.Size);
            var entry = new PaxTarEntry(TarEntryType.RegularFile, path) { Mode = Mode(status), ModificationTime = Time(status), DataStream = data };
            await tar.WriteEntryAsync(entry, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Unpacks <paramref name="tar"/> into the empty folder <paramref name="stateDir"/>, owned by
    /// <paramref name="uid"/>:<paramref name="gid"/> when given. Links are made last and nothing is created through one;
    /// more than <paramref name="maxBytes"/> of file data or <paramref name="maxEntries"/> entries is refused.
    /// </summary>
    public static async Task RestoreAsync(TarReader tar, string stateDir, int? uid, int? gid, long maxBytes, int maxEntries, CancellationToken cancellationToken)
    {
        using var root = Posix.OpenDirectory(stateDir);
        if (Posix.List(root).Count > 0)
        {
            throw new CheckpointException("the state directory to restore into is not empty");
        }

        var links = new List<(string[] Parts, string Target)>();
        long bytes = 0;
        var entries = 0;
        while (await tar.GetNextEntryAsync(copyData: false, cancellationToken).ConfigureAwait(false) is { } entry)
        {
            if (++entries > maxEntries)
            {
                throw new CheckpointException($"the checkpoint holds more than {maxEntries} entries");
            }

            var parts = Split(entry.Name);
            switch (entry.EntryType)
            {
                case TarEntryType.Directory:
                    if (parts.Length > 0)
                    {
                        using var made = OpenParent(root, parts, uid, gid, create: true);
                        EnsureDirectory(made, parts[^1], entry.Mode, uid, gid);
                    }

                    break;
                case TarEntryType.RegularFile or TarEntryType.V7RegularFile when parts.Length > 0:
                    bytes += entry.Length;
                    if (bytes > maxBytes)
                    {
                        throw new CheckpointException($"the checkpoint unpacks to more than {maxBytes} bytes");
                    }

                    using (var parent = OpenParent(root, parts, uid, gid, create: true))
                    {
                        await WriteFileAsync(parent, parts[^1], entry, uid, gid, cancellationToken).ConfigureAwait(false);
                    }

                    break;
                case TarEntryType.SymbolicLink when parts.Length > 0:
                    links.Add((parts, entry.LinkName));
                    break;
                default:
                    throw new CheckpointException($"archive entry '{entry.Name}' is a {entry.EntryType}, which checkpoints do not hold");
            }
        }

        foreach (var (parts, target) in links)
        {
            using var parent = OpenParent(root, parts, uid, gid, create: true);
            Posix.SymlinkAt(target, parent, parts[^1]);
            if (uid is { } u)
            {
                Posix.ChownAt(parent, parts[^1], u, gid ?? u);
            }
        }
    }

    private static async Task WriteFileAsync(SafeFileHandle parent, string name, TarEntry entry, int? uid, int? gid, CancellationToken cancellationToken)
    {
        SafeFileHandle file;
        try
        {
            file = Posix.CreateAt(parent, name, 0x180);
        }
        catch (IOException ex) when (Posix.Errno(ex) == Posix.EExist)
        {
            throw new CheckpointException($"archive entry '{entry.Name}' appears twice");
        }

        using (file)
        {
            if (uid is { } u)
            {
                Posix.ChownAt(file, "", u, gid ?? u);
            }

            Posix.Chmod(file, (int)(entry.Mode & Permissions));
            await using var output = new FileStream(file, FileAccess.Write, bufferSize: 0);
            if (entry.DataStream is { } data)
            {
                await data.CopyToAsync(output, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private static void EnsureDirectory(SafeFileHandle parent, string name, UnixFileMode mode, int? uid, int? gid)
    {
        try
        {
            Posix.MkdirAt(parent, name, 0x1C0);
        }
        catch (IOException ex) when (Posix.Errno(ex) == Posix.EExist)
        {
        }

        using var dir = Posix.OpenDirectoryAt(parent, name);
        if (uid is { } u)
        {
            Posix.ChownAt(dir, "", u, gid ?? u);
        }

        Posix.Chmod(dir, (int)(mode & Permissions) | 0x1C0);
    }

    /// <summary>Opens the folder holding the last part, walking (and making) the folders before it without following links.</summary>
    private static SafeFileHandle OpenParent(SafeFileHandle root, string[] parts, int? uid, int? gid, bool create)
    {
        if (parts.Length > HostTree.MaxDepth)
        {
            throw new CheckpointException($"the checkpoint is nested deeper than {HostTree.MaxDepth} levels");
        }

        var current = Posix.OpenDirectoryAt(root, ".");
        try
        {
            foreach (var part in parts[..^1])
            {
                if (create)
                {
                    EnsureDirectory(current, part, (UnixFileMode)0x1ED, uid, gid);
                }

                var next = Posix.OpenDirectoryAt(current, part);
                current.Dispose();
                current = next;
            }

            return current;
        }
        catch (IOException ex) when (Posix.Errno(ex) is Posix.ELoop or Posix.ENotDir)
        {
            current.Dispose();
            throw new CheckpointException($"archive entry '{string.Join('/', parts)}' lies below a link or a file");
        }
        catch
        {
            current.Dispose();
            throw;
        }
    }

    /// <summary>The name's parts; a name that is absolute or climbs out with '..' is refused.</summary>
    private static string[] Split(string name)
    {
        if (name.StartsWith('/'))
        {
            throw new CheckpointException($"archive entry '{name}' points outside the state directory");
        }

        var parts = name.Split('/', StringSplitOptions.RemoveEmptyEntries).Where(p => p != ".").ToArray();
        if (parts.Any(p => p == ".." || p.Contains('\0', StringComparison.Ordinal)))
        {
            throw new CheckpointException($"archive entry '{name}' points outside the state directory");
        }

        return parts;
    }

    private static UnixFileMode Mode(Posix.FileStatus status) => (UnixFileMode)status.Mode & Permissions;

    private static DateTimeOffset Time(Posix.FileStatus status) => DateTimeOffset.FromUnixTimeSeconds(Math.Max(0, status.MtimeSeconds));

    /// <summary>
    /// Exactly the length a file had when it was opened: a copy that grows or truncates the file while it is read
    /// cannot make the tar header lie (bytes past the length are left out, missing ones are zeros).
    /// </summary>
    private sealed class FixedLengthStream(Stream inner, long length) : Stream
    {
        private long _position;
        private bool _innerEnded;

        public override bool CanRead => true;

        public override bool CanSeek => true;

        public override bool CanWrite => false;

        public override long Length => length;

        public override long Position
        {
            get => _position;
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var want = (int)Math.Min(buffer.Length, length - _position);
            if (want <= 0)
            {
                return 0;
            }

            var n = 0;
            if (!_innerEnded)
            {
                n = await inner.ReadAsync(buffer[..want], cancellationToken).ConfigureAwait(false);
                _innerEnded = n == 0;
            }

            if (n == 0)
            {
                n = want;
                buffer.Span[..n].Clear();
            }

            _position += n;
            return n;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) =>
            origin == SeekOrigin.Current && offset == 0 ? _position : throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
