using System.Runtime.InteropServices;

namespace Coinop.Provider.Workloads.Metering;

/// <summary>The few libc calls the workload runtime needs that .NET does not expose.</summary>
internal static partial class LinuxNative
{
    public const int SigKill = 9;
    public const int SigTerm = 15;
    public const int SigCont = 18;
    public const int SigStop = 19;

    private const int ScClockTicks = 2;

    public static readonly int ClockTicksPerSecond = (int)Math.Max(1, SysConf(ScClockTicks));

    public static bool IsRoot => GetEuid() == 0;

    /// <summary>Sends a signal; false when the process is gone (or not ours to signal).</summary>
    public static bool Signal(int pid, int signal) => pid > 0 && Kill(pid, signal) == 0;

    /// <summary>Changes the owner without following symlinks, so a workload's symlink cannot redirect it.</summary>
    public static void ChangeOwner(string path, int uid, int gid)
    {
        if (LChown(path, uid, gid) != 0)
        {
            throw new IOException($"lchown {path} failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial uint GetEuid();

    [LibraryImport("libc", EntryPoint = "sysconf")]
    private static partial long SysConf(int name);

    [LibraryImport("libc", EntryPoint = "lchown", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int LChown(string path, int uid, int gid);
}
