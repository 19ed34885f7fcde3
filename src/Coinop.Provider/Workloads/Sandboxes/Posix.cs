using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Coinop.Provider.Workloads.Sandboxes;

/// <summary>
/// The libc calls host-side file work on a copy's folders needs: every lookup is one name relative to an open
/// directory with no-follow flags (openat, statx, fchownat, mkdirat, symlinkat, unlinkat), so a link or a rename the
/// copy makes can never send the agent outside the folder. Errors are <see cref="IOException"/> with the errno.
/// </summary>
internal static unsafe partial class Posix
{
    public const int AtFdCwd = -100;
    public const int AtSymlinkNoFollow = 0x100;
    public const int AtRemoveDir = 0x200;
    public const int AtEmptyPath = 0x1000;

    public const int ORdOnly = 0;
    public const int OWrOnly = 1;
    public const int OCreat = 0x40;
    public const int OExcl = 0x80;
    public const int ONoCtty = 0x100;
    public const int ONonBlock = 0x800;
    public const int OCloExec = 0x80000;

    public const int SIfMt = 0xF000;
    public const int SIfDir = 0x4000;
    public const int SIfReg = 0x8000;
    public const int SIfLnk = 0xA000;

    public const int ELoop = 40;
    public const int ENotDir = 20;
    public const int ENoEnt = 2;
    public const int EExist = 17;

    public const int CloneNewNet = 0x40000000;

    private const uint StatxBasicStats = 0x7ff;

    // Their values differ between architectures (asm-generic vs x86).
    public static readonly int ODirectory = IsArm ? 0x4000 : 0x10000;
    public static readonly int ONoFollow = IsArm ? 0x8000 : 0x20000;

    private static bool IsArm => RuntimeInformation.ProcessArchitecture is Architecture.Arm64 or Architecture.Arm;

    /// <summary>What <c>statx</c> tells about one entry (never following a final link).</summary>
    /// <param name="Blocks">512-byte blocks allocated on disk.</param>
    public readonly record struct FileStatus(int Mode, int Uid, int Gid, long Size, long MtimeSeconds, ulong Device, ulong Inode, int Links, long Blocks = 0)
    {
        public int Type => Mode & SIfMt;

        public bool IsDirectory => Type == SIfDir;

        public bool IsRegular => Type == SIfReg;

        public bool IsLink => Type == SIfLnk;
    }

    /// <summary>Creates a folder (and its parents) that only its owner may enter; returns its full path.</summary>
    public static string CreatePrivateDirectory(string path) => OperatingSystem.IsWindows()
        ? throw new PlatformNotSupportedException("workload sandboxes run on Linux")
        : Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute).FullName;

    /// <summary>Opens a directory by an absolute path whose last component must not be a link.</summary>
    public static SafeFileHandle OpenDirectory(string path) => Open(AtFdCwd, path, ORdOnly | ODirectory | ONoFollow | OCloExec, 0);

    /// <summary>Opens <paramref name="name"/> (one component) in <paramref name="dir"/> as a directory, refusing a link.</summary>
    public static SafeFileHandle OpenDirectoryAt(SafeFileHandle dir, string name) => Open(Fd(dir), name, ORdOnly | ODirectory | ONoFollow | OCloExec, 0);

    /// <summary>Opens a file in <paramref name="dir"/> for reading, refusing a link; FIFOs do not block the open.</summary>
    public static SafeFileHandle OpenReadAt(SafeFileHandle dir, string name) => Open(Fd(dir), name, ORdOnly | ONoFollow | ONonBlock | ONoCtty | OCloExec, 0);

    /// <summary>Creates a new file in <paramref name="dir"/>; fails when anything (a link included) has that name.</summary>
    public static SafeFileHandle CreateAt(SafeFileHandle dir, string name, int mode) => Open(Fd(dir), name, OWrOnly | OCreat | OExcl | ONoFollow | ONoCtty | OCloExec, mode);

    public static SafeFileHandle Open(int dirFd, string path, int flags, int mode)
    {
        var fd = OpenAt(dirFd, path, flags, mode);
        return fd < 0 ? throw Error("open", path) : new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>The status of <paramref name="name"/> in <paramref name="dir"/>, or of the directory itself for "".</summary>
    public static FileStatus StatAt(SafeFileHandle dir, string name)
    {
        Statx buffer;
        var flags = AtSymlinkNoFollow | (name.Length == 0 ? AtEmptyPath : 0);
        if (StatxNative(Fd(dir), name, flags, StatxBasicStats, &buffer) != 0)
        {
            throw Error("statx", name);
        }

        return new FileStatus(buffer.Mode, (int)buffer.Uid, (int)buffer.Gid, (long)buffer.Size, buffer.MtimeSeconds,
            ((ulong)buffer.DevMajor << 32) | buffer.DevMinor, buffer.Inode, (int)buffer.Links, (long)buffer.Blocks);
    }

    public static FileStatus Stat(SafeFileHandle file) => StatAt(file, "");

    /// <summary>Changes the owner of <paramref name="name"/> in <paramref name="dir"/> (of a link itself, never its target).</summary>
    public static void ChownAt(SafeFileHandle dir, string name, int uid, int gid)
    {
        var flags = name.Length == 0 ? AtEmptyPath : AtSymlinkNoFollow;
        if (FChownAt(Fd(dir), name, uid, gid, flags) != 0)
        {
            throw Error("fchownat", name);
        }
    }

    public static void Chmod(SafeFileHandle file, int mode)
    {
        if (FChmod(Fd(file), mode) != 0)
        {
            throw Error("fchmod", "");
        }
    }

    public static void MkdirAt(SafeFileHandle dir, string name, int mode)
    {
        if (MkdirAtNative(Fd(dir), name, mode) != 0)
        {
            throw Error("mkdirat", name);
        }
    }

    public static void SymlinkAt(string target, SafeFileHandle dir, string name)
    {
        if (SymlinkAtNative(target, Fd(dir), name) != 0)
        {
            throw Error("symlinkat", name);
        }
    }

    public static string ReadLinkAt(SafeFileHandle dir, string name)
    {
        var buffer = new byte[4096];
        fixed (byte* b = buffer)
        {
            var n = ReadLinkAtNative(Fd(dir), name, b, buffer.Length);
            return n < 0 ? throw Error("readlinkat", name) : System.Text.Encoding.UTF8.GetString(buffer, 0, (int)n);
        }
    }

    public static void UnlinkAt(SafeFileHandle dir, string name, bool directory)
    {
        if (UnlinkAtNative(Fd(dir), name, directory ? AtRemoveDir : 0) != 0)
        {
            throw Error("unlinkat", name);
        }
    }

    /// <summary>The names in an open directory (without . and ..); the handle stays open and usable.</summary>
    public static List<string> List(SafeFileHandle dir)
    {
        // fdopendir takes the descriptor it is given: hand it a duplicate.
        var copy = Dup(Fd(dir));
        if (copy < 0)
        {
            throw Error("dup", "");
        }

        var stream = FdOpenDir(copy);
        if (stream == 0)
        {
            var error = Error("fdopendir", "");
            Close(copy);
            throw error;
        }

        try
        {
            RewindDir(stream);
            var names = new List<string>();
            while (true)
            {
                Marshal.SetLastPInvokeError(0);
                var entry = ReadDir(stream);
                if (entry == 0)
                {
                    var errno = Marshal.GetLastPInvokeError();
                    return errno == 0 ? names : throw new IOException($"readdir failed: errno {errno}");
                }

                // struct dirent64: d_ino (8), d_off (8), d_reclen (2), d_type (1), d_name.
                var name = Marshal.PtrToStringUTF8(entry + 19)!;
                if (name is not ("." or ".."))
                {
                    names.Add(name);
                }
            }
        }
        finally
        {
            CloseDir(stream);
        }
    }

    /// <summary>Moves the calling thread into the network namespace open at <paramref name="ns"/>.</summary>
    public static void SetNetworkNamespace(SafeFileHandle ns)
    {
        if (SetNs(Fd(ns), CloneNewNet) != 0)
        {
            throw Error("setns", "");
        }
    }

    public static int Errno(IOException ex) => ex.HResult;

    private static int Fd(SafeFileHandle handle) => (int)handle.DangerousGetHandle();

    private static IOException Error(string call, string name)
    {
        var errno = Marshal.GetLastPInvokeError();
        return new IOException($"{call} '{name}' failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})") { HResult = errno };
    }

    [StructLayout(LayoutKind.Explicit, Size = 256)]
    private struct Statx
    {
        [FieldOffset(16)] public uint Links;
        [FieldOffset(20)] public uint Uid;
        [FieldOffset(24)] public uint Gid;
        [FieldOffset(28)] public ushort Mode;
        [FieldOffset(32)] public ulong Inode;
        [FieldOffset(40)] public ulong Size;
        [FieldOffset(48)] public ulong Blocks;
        [FieldOffset(112)] public long MtimeSeconds;
        [FieldOffset(136)] public uint DevMajor;
        [FieldOffset(140)] public uint DevMinor;
    }

    [LibraryImport("libc", EntryPoint = "openat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int OpenAt(int dirFd, string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int StatxNative(int dirFd, string path, int flags, uint mask, Statx* buffer);

    [LibraryImport("libc", EntryPoint = "fchownat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int FChownAt(int dirFd, string path, int uid, int gid, int flags);

    [LibraryImport("libc", EntryPoint = "fchmod", SetLastError = true)]
    private static partial int FChmod(int fd, int mode);

    [LibraryImport("libc", EntryPoint = "mkdirat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int MkdirAtNative(int dirFd, string path, int mode);

    [LibraryImport("libc", EntryPoint = "symlinkat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SymlinkAtNative(string target, int dirFd, string path);

    [LibraryImport("libc", EntryPoint = "readlinkat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint ReadLinkAtNative(int dirFd, string path, byte* buffer, nint size);

    [LibraryImport("libc", EntryPoint = "unlinkat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int UnlinkAtNative(int dirFd, string path, int flags);

    [LibraryImport("libc", EntryPoint = "dup", SetLastError = true)]
    private static partial int Dup(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "fdopendir", SetLastError = true)]
    private static partial nint FdOpenDir(int fd);

    [LibraryImport("libc", EntryPoint = "rewinddir")]
    private static partial void RewindDir(nint stream);

    [LibraryImport("libc", EntryPoint = "readdir64", SetLastError = true)]
    private static partial nint ReadDir(nint stream);

    [LibraryImport("libc", EntryPoint = "closedir", SetLastError = true)]
    private static partial int CloseDir(nint stream);

    [LibraryImport("libc", EntryPoint = "setns", SetLastError = true)]
    private static partial int SetNs(int fd, int nsType);
}
