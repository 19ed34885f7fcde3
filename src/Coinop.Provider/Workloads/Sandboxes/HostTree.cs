using Microsoft.Win32.SafeHandles;

namespace Coinop.Provider.Workloads.Sandboxes;

/// <summary>
/// Host-side work on a folder a copy owns (its work and state folders), which may hold links and change under the
/// agent's feet. Every step opens one name relative to an already open directory and refuses links
/// (<see cref="Posix"/>): a link is changed or removed as a link, a directory swapped for a link between two steps is
/// skipped, so nothing outside the folder is ever touched.
/// </summary>
internal static class HostTree
{
    /// <summary>Deeper trees are refused: each level holds a descriptor while it is walked.</summary>
    public const int MaxDepth = 256;

    /// <summary>
    /// What an entry counts at least: one block. An empty file, a short link or a FIFO takes no block but an inode of the
    /// host's filesystem; counted as nothing, a copy could use up the host's inodes within its byte cap.
    /// </summary>
    public const long MinEntryBytes = 4096;

    /// <summary>Makes <paramref name="uid"/>:<paramref name="gid"/> own the folder and everything below it.</summary>
    public static void Chown(string root, int uid, int gid)
    {
        using var dir = Posix.OpenDirectory(root);
        ChownBelow(dir, uid, gid, 1);
        Posix.ChownAt(dir, "", uid, gid);
    }

    /// <summary>
    /// Disk space the folder's entries take (allocated blocks, each entry at least <see cref="MinEntryBytes"/>), measured without following a link;
    /// stops counting once past <paramref name="enough"/>. A missing folder is 0; a tree deeper than
    /// <see cref="MaxDepth"/> is an <see cref="IOException"/>.
    /// </summary>
    public static long AllocatedBytes(string root, long enough)
    {
        SafeFileHandle dir;
        try
        {
            dir = Posix.OpenDirectory(root);
        }
        catch (IOException ex) when (Posix.Errno(ex) == Posix.ENoEnt)
        {
            return 0;
        }

        using (dir)
        {
            return AllocatedBelow(dir, 1, enough, Math.Max(Posix.Stat(dir).Blocks * 512, MinEntryBytes));
        }
    }

    /// <summary>Removes the folder and everything below it; a missing folder is fine.</summary>
    public static void Delete(string root)
    {
        var full = Path.GetFullPath(root);
        var parentPath = Path.GetDirectoryName(full) ?? throw new ArgumentException("cannot delete the root folder", nameof(root));
        var name = Path.GetFileName(full);
        SafeFileHandle parent;
        try
        {
            parent = Posix.OpenDirectory(parentPath);
        }
        catch (IOException ex) when (Posix.Errno(ex) == Posix.ENoEnt)
        {
            return;
        }

        using (parent)
        {
            DeleteAt(parent, name, 0);
        }
    }

    /// <summary>Removes everything inside an open directory, leaving the directory itself.</summary>
    public static void Clear(SafeFileHandle dir)
    {
        foreach (var name in Posix.List(dir))
        {
            DeleteAt(dir, name, 1);
        }
    }

    private static long AllocatedBelow(SafeFileHandle dir, int depth, long enough, long total)
    {
        foreach (var name in Posix.List(dir))
        {
            if (total > enough)
            {
                break;
            }

            if (TryStat(dir, name) is not { } status)
            {
                continue;
            }

            total += Math.Max(status.Blocks * 512, MinEntryBytes);
            if (status.IsDirectory && TryOpenDirectory(dir, name, depth) is { } sub)
            {
                using (sub)
                {
                    total = AllocatedBelow(sub, depth + 1, enough, total);
                }
            }
        }

        return total;
    }

    private static void ChownBelow(SafeFileHandle dir, int uid, int gid, int depth)
    {
        foreach (var name in Posix.List(dir))
        {
            if (TryStat(dir, name) is not { } status)
            {
                continue;
            }

            // A second name for a file is never the agent's doing; changing it could hand out a file elsewhere.
            if (status.IsRegular && status.Links > 1)
            {
                continue;
            }

            Posix.ChownAt(dir, name, uid, gid);
            if (status.IsDirectory && TryOpenDirectory(dir, name, depth) is { } sub)
            {
                using (sub)
                {
                    ChownBelow(sub, uid, gid, depth + 1);
                }
            }
        }
    }

    private static void DeleteAt(SafeFileHandle parent, string name, int depth)
    {
        if (TryStat(parent, name) is not { } status)
        {
            return;
        }

        if (status.IsDirectory && TryOpenDirectory(parent, name, depth) is { } dir)
        {
            using (dir)
            {
                Clear(dir);
            }

            Unlink(parent, name, directory: true);
            return;
        }

        // A file, a link, or a directory that was swapped for a link since it was listed: removed as itself.
        Unlink(parent, name, directory: false);
    }

    private static void Unlink(SafeFileHandle parent, string name, bool directory)
    {
        try
        {
            Posix.UnlinkAt(parent, name, directory);
        }
        catch (IOException ex) when (Posix.Errno(ex) == Posix.ENoEnt)
        {
        }
    }

    internal static Posix.FileStatus? TryStat(SafeFileHandle dir, string name)
    {
        try
        {
            return Posix.StatAt(dir, name);
        }
        catch (IOException ex) when (Posix.Errno(ex) == Posix.ENoEnt)
        {
            return null; // gone since the listing
        }
    }

    /// <summary>The subdirectory, or null when it was replaced by something else (a link) or vanished since it was listed.</summary>
    internal static SafeFileHandle? TryOpenDirectory(SafeFileHandle dir, string name, int depth)
    {
        if (depth >= MaxDepth)
        {
            throw new PathTooLongException($"the folder is nested deeper than {MaxDepth} levels");
        }

        try
        {
            return Posix.OpenDirectoryAt(dir, name);
        }
        catch (IOException ex) when (Posix.Errno(ex) is Posix.ELoop or Posix.ENotDir or Posix.ENoEnt)
        {
            return null;
        }
    }
}
