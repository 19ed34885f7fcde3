using System.Globalization;

namespace Coinop.Provider.Workloads.Limits;

/// <summary>One copy's cgroup(s): where its processes join, its members, its CPU and memory counters.</summary>
public sealed class CopyCgroup
{
    private readonly LimitEnforcement _mode;
    private readonly List<string> _dirs;
    private readonly string _cpuDir;
    private readonly string _memoryDir;
    private readonly string _membersDir;

    internal CopyCgroup(LimitEnforcement mode, List<string> dirs, string cpuDir, string memoryDir, string membersDir)
    {
        _mode = mode;
        _dirs = dirs;
        _cpuDir = cpuDir;
        _memoryDir = memoryDir;
        _membersDir = membersDir;
    }

    /// <summary>The <c>cgroup.procs</c> files a new process writes its pid into, one per hierarchy.</summary>
    public IReadOnlyList<string> ProcsFiles => [.. _dirs.Select(d => Path.Combine(d, "cgroup.procs"))];

    public IReadOnlyList<int> Members() => Cgroups.ReadPids(Path.Combine(_membersDir, "cgroup.procs"));

    /// <summary>CPU time of every process that ever ran in the group, in core-seconds.</summary>
    public double CpuSeconds()
    {
        if (_mode == LimitEnforcement.CgroupV2)
        {
            return ReadKeyed(_cpuDir, "cpu.stat", "usage_usec") / 1e6;
        }

        return ReadLong(_cpuDir, "cpuacct.usage") / 1e9;
    }

    public long MemoryBytes() =>
        _mode == LimitEnforcement.CgroupV2 ? ReadLong(_memoryDir, "memory.current") : ReadLong(_memoryDir, "memory.usage_in_bytes");

    /// <summary>How many processes the kernel's OOM killer took from this group.</summary>
    public long OomKills() =>
        _mode == LimitEnforcement.CgroupV2 ? ReadKeyed(_memoryDir, "memory.events", "oom_kill") : ReadKeyed(_memoryDir, "memory.oom_control", "oom_kill");

    /// <summary>Removes the group(s); only works once every member is gone, so callers retry.</summary>
    public bool TryRemove() => _dirs.Select(TryRemoveDir).ToList().TrueForAll(ok => ok);

    internal static bool TryRemoveDir(string dir)
    {
        try
        {
            // rmdir(2) on a cgroup directory removes its control files with it; it fails while members remain.
            Directory.Delete(dir, recursive: false);
            return true;
        }
        catch (DirectoryNotFoundException)
        {
            return true;
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static long ReadLong(string dir, string file)
    {
        try
        {
            return long.TryParse(File.ReadAllText(Path.Combine(dir, file)).Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : 0;
        }
        catch (IOException)
        {
            return 0;
        }
    }

    private static long ReadKeyed(string dir, string file, string key)
    {
        try
        {
            foreach (var line in File.ReadLines(Path.Combine(dir, file)))
            {
                var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (parts.Length == 2 && parts[0] == key && long.TryParse(parts[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out var v))
                {
                    return v;
                }
            }
        }
        catch (IOException)
        {
        }

        return 0;
    }
}
