using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;

namespace Coinop.Provider.Drain;

/// <summary>
/// The running agent's claim on its data directory: an exclusive lock (one agent per directory) and a pid file
/// through which <c>coinop provider drain</c> finds the agent and sends it SIGTERM.
/// </summary>
public sealed partial class AgentProcess : IDisposable
{
    public const string PidFileName = "provider.pid";
    public const string LockFileName = "provider.lock";

    private const int SigTerm = 15;
    private readonly FileStream _lock;
    private readonly string _pidPath;

    private AgentProcess(FileStream fileLock, string pidPath)
    {
        _lock = fileLock;
        _pidPath = pidPath;
    }

    /// <summary>Locks the data directory and writes the pid file; fails if another agent holds the directory.</summary>
    public static AgentProcess Acquire(string dataDir)
    {
        Directory.CreateDirectory(dataDir);
        FileStream fileLock;
        try
        {
            // FileShare.None takes an exclusive advisory lock that dies with the process.
            fileLock = new FileStream(Path.Combine(dataDir, LockFileName), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException)
        {
            throw new IOException($"another provider agent is running with data directory {dataDir}");
        }

        var pidPath = Path.Combine(dataDir, PidFileName);
        using var self = Process.GetCurrentProcess();
        File.WriteAllText(pidPath, string.Create(CultureInfo.InvariantCulture, $"{self.Id}\n{StartMark(self)}\n"));
        return new AgentProcess(fileLock, pidPath);
    }

    public void Dispose()
    {
        try
        {
            File.Delete(_pidPath);
        }
        catch (IOException)
        {
            // Best effort: a stale pid file is detected by its start time.
        }

        _lock.Dispose();
    }

    /// <summary>
    /// Sends SIGTERM to the agent running with <paramref name="dataDir"/> and waits until it has exited.
    /// Returns its pid; throws <see cref="IOException"/> with a readable message when there is nothing to drain
    /// or it does not exit in time.
    /// </summary>
    public static async Task<int> DrainAsync(string dataDir, TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken)
    {
        var pidPath = Path.Combine(dataDir, PidFileName);
        string[] lines;
        try
        {
            lines = await File.ReadAllLinesAsync(pidPath, cancellationToken);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new IOException($"no provider agent is running with data directory {dataDir} (no {PidFileName})");
        }

        if (lines.Length < 2 || !int.TryParse(lines[0], NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
            || !long.TryParse(lines[1], NumberStyles.None, CultureInfo.InvariantCulture, out var mark))
        {
            throw new IOException($"{pidPath} is not a provider pid file");
        }

        if (!IsSameProcess(pid, mark))
        {
            throw new IOException($"no provider agent is running with data directory {dataDir} (stale {PidFileName} for pid {pid})");
        }

        if (Kill(pid, SigTerm) != 0)
        {
            throw new IOException($"cannot signal provider agent pid {pid} (errno {Marshal.GetLastPInvokeError()})");
        }

        var started = time.GetTimestamp();
        while (IsAlive(pid))
        {
            if (time.GetElapsedTime(started) > timeout)
            {
                throw new IOException($"provider agent pid {pid} did not exit within {timeout.TotalSeconds:0} s");
            }

            await Task.Delay(TimeSpan.FromMilliseconds(100), time, cancellationToken);
        }

        return pid;
    }

    /// <summary>The pid of the agent running with <paramref name="dataDir"/>, or null when none is (no pid file, or a stale one).</summary>
    public static int? RunningPid(string dataDir)
    {
        try
        {
            var lines = File.ReadAllLines(Path.Combine(dataDir, PidFileName));
            return lines.Length >= 2 && int.TryParse(lines[0], NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
                && long.TryParse(lines[1], NumberStyles.None, CultureInfo.InvariantCulture, out var mark) && IsSameProcess(pid, mark)
                ? pid
                : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>The process start time in unix ms: with the pid it tells our agent from a recycled pid.</summary>
    private static long StartMark(Process process) => new DateTimeOffset(process.StartTime.ToUniversalTime()).ToUnixTimeMilliseconds();

    private static bool IsSameProcess(int pid, long mark)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited && Math.Abs(StartMark(process) - mark) < 1000;
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException)
        {
            return false;
        }
    }

    /// <summary>Alive means signalable and not a zombie waiting for its parent.</summary>
    private static bool IsAlive(int pid)
    {
        if (Kill(pid, 0) != 0)
        {
            return false;
        }

        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var state = stat[(stat.LastIndexOf(')') + 2)..];
            return !state.StartsWith('Z');
        }
        catch (IOException)
        {
            return false;
        }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
