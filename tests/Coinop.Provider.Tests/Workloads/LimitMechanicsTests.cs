using Coinop.Provider.Workloads.Limits;
using Coinop.TestKit;

namespace Coinop.Provider.Tests.Workloads;

/// <summary>The pieces of the limits that do not need a kernel: the duty-cycle arithmetic and the cgroup file formats.</summary>
public class LimitMechanicsTests
{
    [Fact]
    public void The_duty_cycle_holds_a_busy_copy_to_its_share()
    {
        var throttle = new CpuThrottle(0.5);
        double cpu = 0, running = 0;
        const double tick = 0.05;
        for (var i = 0; i < 400; i++)
        {
            // Two busy threads: two core-seconds per second whenever the copy is not held.
            if (!throttle.Hold(cpu, tick))
            {
                cpu += 2 * tick;
                running += tick;
            }
        }

        Assert.InRange(cpu / (400 * tick), 0.45, 0.6);
        Assert.True(running < 400 * tick);
    }

    [Fact]
    public void An_idle_copy_cannot_save_up_more_than_a_second_of_cpu()
    {
        var throttle = new CpuThrottle(1);
        for (var i = 0; i < 100; i++)
        {
            Assert.False(throttle.Hold(0, 1));
        }

        // After 100 idle seconds, a 2-second burst is still held.
        Assert.True(throttle.Hold(2, 0.05));
    }

    [Fact]
    public void Cgroup_v2_limits_are_written_as_cpu_max_and_memory_max()
    {
        using var dir = new TempDirectory();
        var group = Cgroups.ForV2(dir.Path).Create("copy", 1.5, 256L * 1024 * 1024, out var error);
        Assert.NotNull(group);
        Assert.Null(error);
        Assert.Equal("150000 100000", File.ReadAllText(Path.Combine(dir.Path, "copy", "cpu.max")));
        Assert.Equal("268435456", File.ReadAllText(Path.Combine(dir.Path, "copy", "memory.max")));
        Assert.Equal([Path.Combine(dir.Path, "copy", "cgroup.procs")], group.ProcsFiles);

        File.WriteAllText(Path.Combine(dir.Path, "copy", "cpu.stat"), "usage_usec 2500000\nuser_usec 2000000\n");
        File.WriteAllText(Path.Combine(dir.Path, "copy", "memory.current"), "1048576\n");
        File.WriteAllText(Path.Combine(dir.Path, "copy", "memory.events"), "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n");
        Assert.Equal(2.5, group.CpuSeconds());
        Assert.Equal(1048576, group.MemoryBytes());
        Assert.Equal(1, group.OomKills());
    }

    [Fact]
    public void Cgroup_v1_limits_are_written_as_cfs_quota_and_limit_in_bytes()
    {
        using var dir = new TempDirectory();
        var cpu = Directory.CreateDirectory(Path.Combine(dir.Path, "cpu")).FullName;
        var cpuacct = Directory.CreateDirectory(Path.Combine(dir.Path, "cpuacct")).FullName;
        var memory = Directory.CreateDirectory(Path.Combine(dir.Path, "memory")).FullName;
        var group = Cgroups.ForV1(cpu, cpuacct, memory).Create("copy", 0.25, 64L * 1024 * 1024, out _);
        Assert.NotNull(group);
        Assert.Equal("100000", File.ReadAllText(Path.Combine(cpu, "copy", "cpu.cfs_period_us")));
        Assert.Equal("25000", File.ReadAllText(Path.Combine(cpu, "copy", "cpu.cfs_quota_us")));
        Assert.Equal("67108864", File.ReadAllText(Path.Combine(memory, "copy", "memory.limit_in_bytes")));
        Assert.Equal(3, group.ProcsFiles.Count);

        File.WriteAllText(Path.Combine(cpuacct, "copy", "cpuacct.usage"), "1500000000\n");
        File.WriteAllText(Path.Combine(memory, "copy", "memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
        Assert.Equal(1.5, group.CpuSeconds());
        Assert.Equal(2, group.OomKills());
    }

    [Fact]
    public void Process_caps_are_written_as_pids_max_where_the_pids_controller_is()
    {
        using var dir = new TempDirectory();
        var v1 = Cgroups.ForV1(dir.Sub("cpu"), dir.Sub("cpuacct"), dir.Sub("memory"), dir.Sub("pids")).Create("copy", 1, 64L * 1024 * 1024, out _, maxProcesses: 100);
        Assert.NotNull(v1);
        Assert.Equal("100", File.ReadAllText(Path.Combine(dir.Path, "pids", "copy", "pids.max")));
        Assert.Contains(Path.Combine(dir.Path, "pids", "copy", "cgroup.procs"), v1.ProcsFiles);

        // v2: written only where the controller made the file (it is optional there).
        Directory.CreateDirectory(Path.Combine(dir.Path, "v2", "copy"));
        File.WriteAllText(Path.Combine(dir.Path, "v2", "copy", "pids.max"), "max");
        Assert.NotNull(Cgroups.ForV2(Path.Combine(dir.Path, "v2")).Create("copy", 1, 64L * 1024 * 1024, out _, maxProcesses: 100));
        Assert.Equal("100", File.ReadAllText(Path.Combine(dir.Path, "v2", "copy", "pids.max")));
    }

    [Fact]
    public void A_real_cgroup_gets_the_process_cap_where_this_machine_has_the_pids_controller()
    {
        var cgroups = Cgroups.Detect();
        Assert.SkipWhen(cgroups.Mode == LimitEnforcement.Approximate, "no writable cgroup here: " + cgroups.Description);
        var group = cgroups.Create(Cgroups.GroupName("pids-test", 1), 1, 64L * 1024 * 1024, out var error, maxProcesses: 48);
        Assert.NotNull(group);
        try
        {
            var pidsMax = group.ProcsFiles.Select(f => Path.Combine(Path.GetDirectoryName(f)!, "pids.max")).FirstOrDefault(File.Exists);
            Assert.SkipWhen(pidsMax is null, "no pids controller in this machine's writable cgroups");
            Assert.Equal("48", File.ReadAllText(pidsMax!).Trim());
        }
        finally
        {
            group.TryRemove();
        }
    }

    [Fact]
    public void Detection_never_throws_and_names_what_it_found()
    {
        var cgroups = Cgroups.Detect();
        Assert.False(string.IsNullOrEmpty(cgroups.Description));
        TestContext.Current.TestOutputHelper?.WriteLine($"{cgroups.Mode}: {cgroups.Description}");
    }
}
