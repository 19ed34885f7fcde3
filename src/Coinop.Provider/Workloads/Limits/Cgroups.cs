using System.Globalization;
using System.Security.Cryptography;

namespace Coinop.Provider.Workloads.Limits;

/// <summary>The cgroup hierarchy the agent may create per-copy groups in, found once at start.</summary>
public sealed class Cgroups
{
    public const long CpuPeriodMicros = 100_000;
    internal const string GroupFolder = "coinop-workloads";

    private readonly string? _v2Base;
    private readonly IReadOnlyDictionary<string, string> _v1Bases;

    internal Cgroups(LimitEnforcement mode, string? v2Base, IReadOnlyDictionary<string, string> v1Bases, string why)
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
            var mounts = CgroupDiscovery.ReadMounts();
            var own = CgroupDiscovery.ReadOwnGroups();
            return CgroupDiscovery.TryV2(mounts, own, out var v2) ? v2! : CgroupDiscovery.TryV1(mounts, own, out var v1) ? v1! : None("no writable cgroup with cpu and memory controllers");
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

    internal static void TryWrite(string dir, string file, string value)
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

}
