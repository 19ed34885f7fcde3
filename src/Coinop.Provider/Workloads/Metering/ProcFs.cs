using System.Globalization;

namespace Coinop.Provider.Workloads.Metering;

/// <summary>One line of <c>/proc/PID/stat</c>, the fields the runtime uses.</summary>
internal readonly record struct ProcStat(int Pid, int ParentPid, int ProcessGroup, long CpuTicks, long StartTicks, long RssPages);

/// <summary>Reads the process table from <c>/proc</c>: process trees, CPU ticks and resident memory.</summary>
internal static class ProcFs
{
    public static ProcStat? ReadStat(int pid)
    {
        string text;
        try
        {
            text = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }

        return ParseStat(pid, text);
    }

    /// <summary>Parses a stat line; the command name may hold spaces and parentheses, so fields start after the last ')'.</summary>
    public static ProcStat? ParseStat(int pid, string text)
    {
        var close = text.LastIndexOf(')');
        if (close < 0)
        {
            return null;
        }

        var f = text[(close + 2)..].Split(' ');
        // f[0] is field 3 (state): field N is f[N - 3].
        if (f.Length < 22)
        {
            return null;
        }

        static long L(string s) => long.Parse(s, NumberStyles.Integer, CultureInfo.InvariantCulture);
        return new ProcStat(pid, (int)L(f[1]), (int)L(f[2]), L(f[11]) + L(f[12]), L(f[19]), L(f[21]));
    }

    public static IEnumerable<ProcStat> All()
    {
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && ReadStat(pid) is { } stat)
            {
                yield return stat;
            }
        }
    }

    /// <summary>
    /// The root and every live descendant, plus members of the root's process group (children of a process that
    /// exited are reparented away from the tree but keep the group). Each with its depth below the root (-1 for a
    /// group member found outside the tree).
    /// </summary>
    public static List<(ProcStat Stat, int Depth)> Tree(int rootPid)
    {
        var all = All().ToList();
        var children = all.ToLookup(s => s.ParentPid);
        var result = new List<(ProcStat, int)>();
        var seen = new HashSet<int>();
        var root = all.FirstOrDefault(s => s.Pid == rootPid);
        if (root.Pid == rootPid)
        {
            var queue = new Queue<(ProcStat, int)>();
            queue.Enqueue((root, 0));
            while (queue.Count > 0)
            {
                var (s, depth) = queue.Dequeue();
                if (!seen.Add(s.Pid))
                {
                    continue;
                }

                result.Add((s, depth));
                foreach (var c in children[s.Pid])
                {
                    queue.Enqueue((c, depth + 1));
                }
            }
        }

        foreach (var s in all)
        {
            if (s.ProcessGroup == rootPid && seen.Add(s.Pid))
            {
                result.Add((s, -1));
            }
        }

        return result;
    }

    public static bool Exists(int pid) => Directory.Exists($"/proc/{pid}");
}
