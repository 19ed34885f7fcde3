using Coinop.Provider.Workloads.Sandboxes;
using Microsoft.Extensions.Logging;

namespace Coinop.Provider.Workloads.Limits;

/// <summary>
/// Holds a copy to its disk cap: every <see cref="CopyLimits.DiskCheckInterval"/> it measures <c>/work</c> and
/// <c>/state</c> from the host (by descriptor, never following a link) and stops the copy once they hold more than
/// <see cref="CopyLimits.DiskBytes"/> together or nest deeper than the agent walks. Between two measurements a copy can
/// write past the cap by what it writes in one interval; no single file can (RLIMIT_FSIZE is the cap).
/// </summary>
internal static partial class DiskWatch
{
    /// <param name="stop">Ends the copy, told why.</param>
    public static void Start(CopyFolders folders, CopyLimits limits, Task exited, Action<string> stop, TimeProvider time, ILogger logger) =>
        _ = Task.Run(() => RunAsync(folders, limits, exited, stop, time, logger));

    /// <summary>Why the folders break the cap, or null while they keep it.</summary>
    public static string? Check(CopyFolders folders, long cap)
    {
        try
        {
            long used = 0;
            foreach (var dir in new[] { folders.Work, folders.State }.OfType<string>())
            {
                used += HostTree.AllocatedBytes(dir, cap - used);
            }

            return used > cap ? $"/work and /state hold more than the copy's disk cap of {cap / (1024 * 1024)} MiB" : null;
        }
        catch (PathTooLongException ex)
        {
            return ex.Message;
        }
    }

    private static async Task RunAsync(CopyFolders folders, CopyLimits limits, Task exited, Action<string> stop, TimeProvider time, ILogger logger)
    {
        while (!exited.IsCompleted)
        {
            await Task.WhenAny(exited, Task.Delay(limits.DiskCheckInterval, time)).ConfigureAwait(false);
            if (exited.IsCompleted)
            {
                return;
            }

            string? over;
            try
            {
                over = Check(folders, limits.DiskBytes);
            }
            catch (IOException ex)
            {
                // Folders changing under the walk (or already removed): measured again next time.
                LogUnmeasured(logger, folders.Root, ex.Message);
                continue;
            }

            if (over is not null)
            {
                LogOverCap(logger, folders.Root, over);
                stop(over);
                return;
            }
        }
    }
}
