using System.Globalization;
using System.Security.Cryptography;
using Coinop.Provider.Workloads.Metering;

namespace Coinop.Provider.Workloads.Limits;

/// <summary>How CPU and memory limits are enforced on this machine.</summary>
public enum LimitEnforcement
{
    /// <summary>No writable cgroup: RLIMIT_AS for memory and SIGSTOP/SIGCONT duty-cycling for CPU (approximate).</summary>
    Approximate,

    /// <summary>cgroup v1: <c>cpu.cfs_quota_us</c>, <c>memory.limit_in_bytes</c>, <c>cpuacct.usage</c>.</summary>
    CgroupV1,

    /// <summary>cgroup v2: <c>cpu.max</c>, <c>memory.max</c>, <c>memory.swap.max</c>.</summary>
    CgroupV2,
}

/// <summary>The cgroup hierarchy the agent may create per-copy groups in, found once at start.</summary>
public sealed class Cgroups
{
    public const long CpuPeriodMicros = 100_000;
    private const string GroupFolder = "coinop-workloads";

    private readonly string? _v2Base;
    private readonly IReadOnlyDictionary<string, string> _v1Bases;

    private Cgroups(LimitEnforcement mode, string? v2Base, IReadOnlyDictionary<string, string> v1Bases, string why)
    {
        Mode = mode;
        _v2Base = v2Base;
        _v1Bases = v1Bases;
        Description = why;
    }

    public LimitEnforcement Mode { get; }

    /// <summary>What was found, for the startup log line.</summary>
    public string Description { get; }

    public static Cgroups None(string why) => new(LimitEnforcement.Approximate, null, new Dictionary<string, string>(), why);

    /// <summary>Uses ready-made group folders (tests of the file formats; a provider's own delegated subtree).</summary>
    public static Cgroups ForV2(string baseDir) => new(LimitEnforcement.CgroupV2, baseDir, new Dictionary<string, string>(), "cgroup v2 at " + baseDir);

    public static Cgroups ForV1(string cpuBase, string cpuacctBase, string memoryBase, string? pidsBase = null)
    {
        var bases = new Dictionary<string, string> { ["cpu"] = cpuBase, ["cpuacct"] = cpuacctBase, ["memory"] = memoryBase };
        if (pidsBase is not null)
        {
            bases["pids"] = pidsBase;
        }

        return new(LimitEnforcement.CgroupV1, null, bases, "cgroup v1");
    }

    /// <summary>
    /// Finds a writable cgroup below the agent's own groups (its delegated subtree): v2 when the unified hierarchy has
    /// the cpu and memory controllers, else v1 when cpu, cpuacct and memory are mounted. Never throws: anything that
    /// does not work means <see cref="LimitEnforcement.Approximate"/>.
    /// </summary>
    public static Cgroups Detect()
    {
        try
        {
            var mounts = ReadMounts();
            var own = ReadOwnGroups();
            return TryV2(mounts, own, out var v2) ? v2! : TryV1(mounts, own, out var v1) ? v1! : None("no writable cgroup with cpu and memory controllers");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException)
        {
            return None("cgroups unreadable: " + ex.Message);
        }
    }

    /// <summary>
    /// Creates the copy's group(s) and writes its limits; null (with the reason) when the kernel refuses. The process
    /// cap is written where the pids controller is available (a second layer under the sandbox's own RLIMIT_NPROC).
    /// </summary>
    public CopyCgroup? Create(string name, double cpuCores, long memoryBytes, out string? error, int? maxProcesses = null)
    {
        var pidsMax = maxProcesses?.ToString(CultureInfo.InvariantCulture);
        error = null;
        var created = new List<string>();
        try
        {
            var quota = Math.Max(1000, (long)Math.Round(cpuCores * CpuPeriodMicros));
            if (Mode == LimitEnforcement.CgroupV2)
            {
                var dir = Path.Combine(_v2Base!, name);
                Directory.CreateDirectory(dir);
                created.Add(dir);
                Write(dir, "cpu.max", $"{quota} {CpuPeriodMicros}");
                Write(dir, "memory.max", memoryBytes.ToString(CultureInfo.InvariantCulture));
                TryWrite(dir, "memory.swap.max", "0");
                // One OOM kill takes the whole copy down, as it does with the other sandboxes' exit.
                TryWrite(dir, "memory.oom.group", "1");
                if (pidsMax is not null)
                {
                    TryWrite(dir, "pids.max", pidsMax);
                }

                return new CopyCgroup(Mode, [dir], dir, dir, dir);
            }

            if (Mode == LimitEnforcement.CgroupV1)
            {
                var dirs = new Dictionary<string, string>();
                foreach (var (controller, baseDir) in _v1Bases)
                {
                    var dir = Path.Combine(baseDir, name);
                    if (!dirs.ContainsValue(dir))
                    {
                        Directory.CreateDirectory(dir);
                        created.Add(dir);
                    }

                    dirs[controller] = dir;
                }

                Write(dirs["cpu"], "cpu.cfs_period_us", CpuPeriodMicros.ToString(CultureInfo.InvariantCulture));
                Write(dirs["cpu"], "cpu.cfs_quota_us", quota.ToString(CultureInfo.InvariantCulture));
                Write(dirs["memory"], "memory.limit_in_bytes", memoryBytes.ToString(CultureInfo.InvariantCulture));
                // Without this the copy could page out past its limit where swap exists.
                TryWrite(dirs["memory"], "memory.memsw.limit_in_bytes", memoryBytes.ToString(CultureInfo.InvariantCulture));
                if (pidsMax is not null && dirs.TryGetValue("pids", out var pids))
                {
                    Write(pids, "pids.max", pidsMax);
                }

                return new CopyCgroup(Mode, created, dirs["cpuacct"], dirs["memory"], dirs["memory"]);
            }

            error = "no cgroup";
            return null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            foreach (var dir in created)
            {
                CopyCgroup.TryRemoveDir(dir);
            }

            error = ex.Message;
            return null;
        }
    }

    /// <summary>A unique group name for one copy.</summary>
    public static string GroupName(string workloadId, long epoch) =>
        $"{workloadId}-e{epoch}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}";

    internal static void Write(string dir, string file, string value) => File.WriteAllText(Path.Combine(dir, file), value);

    private static void TryWrite(string dir, string file, string value)
    {
        try
        {
            if (File.Exists(Path.Combine(dir, file)))
            {
                Write(dir, file, value);
            }
        }
        catch (IOException)
        {
        }
    }

    private sealed record Mount(string Root, string MountPoint, string FsType, string[] SuperOptions);

    private static List<Mount> ReadMounts()
    {
        var result = new List<Mount>();
        foreach (var line in File.ReadAllLines("/proc/self/mountinfo"))
        {
            // id parent major:minor root mountpoint options [optional...] - fstype source superoptions
            var dash = line.IndexOf(" - ", StringComparison.Ordinal);
            if (dash < 0)
            {
                continue;
            }

            var left = line[..dash].Split(' ');
            var right = line[(dash + 3)..].Split(' ');
            if (left.Length >= 5 && right.Length >= 3 && right[0] is "cgroup" or "cgroup2")
            {
                result.Add(new Mount(Unescape(left[3]), Unescape(left[4]), right[0], right[2].Split(',')));
            }
        }

        return result;
    }

    private static string Unescape(string s) => s.Replace("\\040", " ", StringComparison.Ordinal);

    /// <summary>Lines of <c>/proc/self/cgroup</c>: controllers ("" for v2) → path.</summary>
    private static Dictionary<string, string> ReadOwnGroups()
    {
        var result = new Dictionary<string, string>();
        foreach (var line in File.ReadAllLines("/proc/self/cgroup"))
        {
            var parts = line.Split(':', 3);
            if (parts.Length == 3)
            {
                foreach (var controller in parts[1].Split(','))
                {
                    result[controller] = parts[2];
                }
            }
        }

        return result;
    }

    private static string Join(Mount mount, string ownPath)
    {
        // Inside a cgroup namespace or a bind-mounted subtree, our path may already be relative to the mount's root.
        var relative = mount.Root != "/" && ownPath.StartsWith(mount.Root, StringComparison.Ordinal) ? ownPath[mount.Root.Length..] : ownPath;
        return Path.Combine(mount.MountPoint, relative.TrimStart('/'));
    }

    private static bool TryV2(List<Mount> mounts, Dictionary<string, string> own, out Cgroups? result)
    {
        result = null;
        var mount = mounts.FirstOrDefault(m => m.FsType == "cgroup2");
        if (mount is null || !own.TryGetValue("", out var ownPath))
        {
            return false;
        }

        var ownDir = Join(mount, ownPath);
        var controllers = ReadWords(Path.Combine(ownDir, "cgroup.controllers"));
        if (!controllers.Contains("cpu") || !controllers.Contains("memory"))
        {
            return false;
        }

        try
        {
            // v2 forbids processes in a group that hands controllers to children, so if enabling them in our own
            // group fails, the agent moves itself into a leaf first (the usual pattern for a delegated subtree).
            if (!TryEnable(ownDir))
            {
                var leaf = Path.Combine(ownDir, "coinop-agent");
                Directory.CreateDirectory(leaf);
                Write(leaf, "cgroup.procs", Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
                if (!TryEnable(ownDir))
                {
                    return false;
                }
            }

            var baseDir = Path.Combine(ownDir, GroupFolder);
            Directory.CreateDirectory(baseDir);
            if (!TryEnable(baseDir))
            {
                return false;
            }

            SweepStale(baseDir);
            var agentDir = Path.Combine(baseDir, AgentFolder());
            Directory.CreateDirectory(agentDir);
            if (!TryEnable(agentDir) || !Probe(agentDir))
            {
                return false;
            }

            result = new Cgroups(LimitEnforcement.CgroupV2, agentDir, new Dictionary<string, string>(), "cgroup v2 at " + agentDir);
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static bool TryEnable(string dir)
    {
        var enabled = ReadWords(Path.Combine(dir, "cgroup.subtree_control"));
        if (!enabled.Contains("pids") && ReadWords(Path.Combine(dir, "cgroup.controllers")).Contains("pids"))
        {
            // Optional: the process cap's second layer.
            TryWrite(dir, "cgroup.subtree_control", "+pids");
        }

        if (enabled.Contains("cpu") && enabled.Contains("memory"))
        {
            return true;
        }

        try
        {
            Write(dir, "cgroup.subtree_control", "+cpu +memory");
            return true;
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static bool TryV1(List<Mount> mounts, Dictionary<string, string> own, out Cgroups? result)
    {
        result = null;
        var bases = new Dictionary<string, string>();
        foreach (var controller in new[] { "cpu", "cpuacct", "memory" })
        {
            var mount = mounts.FirstOrDefault(m => m.FsType == "cgroup" && m.SuperOptions.Contains(controller));
            if (mount is null || !own.TryGetValue(controller, out var ownPath))
            {
                return false;
            }

            bases[controller] = Path.Combine(Join(mount, ownPath), GroupFolder);
        }

        // Optional: the pids hierarchy, for the process cap's second layer.
        if (mounts.FirstOrDefault(m => m.FsType == "cgroup" && m.SuperOptions.Contains("pids")) is { } pidsMount && own.TryGetValue("pids", out var pidsPath)
            && !bases.ContainsValue(Path.Combine(Join(pidsMount, pidsPath), GroupFolder)))
        {
            bases["pids"] = Path.Combine(Join(pidsMount, pidsPath), GroupFolder);
        }

        if (bases.TryGetValue("pids", out var pidsBase))
        {
            try
            {
                Directory.CreateDirectory(pidsBase);
                SweepStale(pidsBase);
                var agentDir = Directory.CreateDirectory(Path.Combine(pidsBase, AgentFolder())).FullName;
                bases["pids"] = Probe(agentDir) ? agentDir : "";
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                bases["pids"] = "";
            }

            if (bases["pids"].Length == 0)
            {
                bases.Remove("pids");
            }
        }

        try
        {
            foreach (var (controller, baseDir) in bases.Where(b => b.Key != "pids").ToList())
            {
                Directory.CreateDirectory(baseDir);
                SweepStale(baseDir);
                bases[controller] = Directory.CreateDirectory(Path.Combine(baseDir, AgentFolder())).FullName;
            }

            if (!bases.Values.Distinct().All(Probe))
            {
                return false;
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }

        result = new Cgroups(LimitEnforcement.CgroupV1, null, bases, $"cgroup v1 (cpu {bases["cpu"]}, memory {bases["memory"]})");
        return true;
    }

    /// <summary>
    /// This agent's own folder: <c>agent-PID-STARTTICKS</c>, so a later agent can tell the folders of agents that are
    /// gone (crashed, killed) from those of agents still running beside it on the same machine.
    /// </summary>
    private static string AgentFolder() =>
        $"agent-{Environment.ProcessId}-{ProcFs.ReadStat(Environment.ProcessId)?.StartTicks ?? 0}";

    /// <summary>
    /// Removes the groups a dead agent left behind, SIGKILLing whatever still runs in them first: a copy outliving its
    /// agent must not keep running (or keep its capacity) once an agent starts here again.
    /// </summary>
    private static void SweepStale(string baseDir)
    {
        foreach (var agentDir in Directory.EnumerateDirectories(baseDir, "agent-*"))
        {
            var parts = Path.GetFileName(agentDir).Split('-');
            if (parts.Length == 3 && int.TryParse(parts[1], CultureInfo.InvariantCulture, out var pid) && long.TryParse(parts[2], CultureInfo.InvariantCulture, out var start)
                && ProcFs.ReadStat(pid)?.StartTicks == start)
            {
                continue;
            }

            foreach (var group in Directory.EnumerateDirectories(agentDir))
            {
                for (var attempt = 0; attempt < 50; attempt++)
                {
                    foreach (var member in ReadPids(Path.Combine(group, "cgroup.procs")))
                    {
                        LinuxNative.Signal(member, LinuxNative.SigKill);
                    }

                    if (CopyCgroup.TryRemoveDir(group))
                    {
                        break;
                    }

                    Thread.Sleep(20);
                }
            }

            CopyCgroup.TryRemoveDir(agentDir);
        }
    }

    internal static List<int> ReadPids(string procsFile)
    {
        try
        {
            return [.. File.ReadAllLines(procsFile).Where(l => l.Length > 0).Select(l => int.Parse(l, CultureInfo.InvariantCulture))];
        }
        catch (IOException)
        {
            return [];
        }
    }

    /// <summary>A real cgroup directory fills itself with control files; a plain directory would not.</summary>
    private static bool Probe(string baseDir)
    {
        var probe = Path.Combine(baseDir, "probe-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)));
        Directory.CreateDirectory(probe);
        try
        {
            return File.Exists(Path.Combine(probe, "cgroup.procs"));
        }
        finally
        {
            CopyCgroup.TryRemoveDir(probe);
        }
    }

    private static HashSet<string> ReadWords(string path)
    {
        try
        {
            return [.. File.ReadAllText(path).Split([' ', '\n'], StringSplitOptions.RemoveEmptyEntries)];
        }
        catch (IOException)
        {
            return [];
        }
    }
}

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
