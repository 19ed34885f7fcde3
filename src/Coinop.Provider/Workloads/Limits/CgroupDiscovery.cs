using System.Globalization;
using System.Security.Cryptography;
using Coinop.Provider.Workloads.Metering;

namespace Coinop.Provider.Workloads.Limits;

/// <summary>
/// Finds where this agent may create copies' groups: reads the cgroup mounts and the agent's own groups, tries v2 then
/// v1, and sweeps the groups of agents that are gone.
/// </summary>
internal static class CgroupDiscovery
{
    internal sealed record Mount(string Root, string MountPoint, string FsType, string[] SuperOptions);

    internal static List<Mount> ReadMounts()
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
    internal static Dictionary<string, string> ReadOwnGroups()
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

    internal static bool TryV2(List<Mount> mounts, Dictionary<string, string> own, out Cgroups? result)
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
                Cgroups.Write(leaf, "cgroup.procs", Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
                if (!TryEnable(ownDir))
                {
                    return false;
                }
            }

            var baseDir = Path.Combine(ownDir, Cgroups.GroupFolder);
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
            Cgroups.TryWrite(dir, "cgroup.subtree_control", "+pids");
        }

        if (enabled.Contains("cpu") && enabled.Contains("memory"))
        {
            return true;
        }

        try
        {
            Cgroups.Write(dir, "cgroup.subtree_control", "+cpu +memory");
            return true;
        }
        catch (IOException)
        {
            return false;
        }
    }

    internal static bool TryV1(List<Mount> mounts, Dictionary<string, string> own, out Cgroups? result)
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

            bases[controller] = Path.Combine(Join(mount, ownPath), Cgroups.GroupFolder);
        }

        // Optional: the pids hierarchy, for the process cap's second layer.
        if (mounts.FirstOrDefault(m => m.FsType == "cgroup" && m.SuperOptions.Contains("pids")) is { } pidsMount && own.TryGetValue("pids", out var pidsPath)
            && !bases.ContainsValue(Path.Combine(Join(pidsMount, pidsPath), Cgroups.GroupFolder)))
        {
            bases["pids"] = Path.Combine(Join(pidsMount, pidsPath), Cgroups.GroupFolder);
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
                    foreach (var member in Cgroups.ReadPids(Path.Combine(group, "cgroup.procs")))
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
