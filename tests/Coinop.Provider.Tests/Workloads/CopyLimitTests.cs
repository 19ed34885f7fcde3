using System.Globalization;
using Coinop.Provider.Workloads;
using Coinop.Provider.Workloads.Limits;
using Coinop.Provider.Workloads.Sandboxes;
using Coinop.TestKit;
using Microsoft.Extensions.Logging.Abstractions;

namespace Coinop.Provider.Tests.Workloads;

/// <summary>
/// A tenant exhausting what the provider's other tenants need (issue 9 item 5): a fork bomb, a /tmp filler, a disk
/// filler, new user namespaces and refused system calls, and another copy's files and environment. Each runs in a real
/// bubblewrap (or plain process) copy, and a second copy started beside it must still be served.
/// </summary>
[Collection(nameof(CpuSensitive))]
public sealed class CopyLimitTests : IDisposable
{
    private readonly TempDirectory _dir = new("coinop-lim");

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static bool IsRoot => Environment.UserName == "root";

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task A_fork_bomb_is_held_at_the_process_cap_and_another_copy_is_still_served()
    {
        var limits = new CopyLimits { MaxProcesses = 40 };
        var sandbox = await BubblewrapAsync(limits);
        // Forks for ever, every child stays; a failed fork is reported once and the loop goes on trying.
        const string Bomb = "while (1) { my $p = fork; if (!defined $p) { print STDERR \"fork failed: $!\\n\" unless $said++; next } if ($p == 0) { sleep 600; exit } }";
        await using var bomb = await StartAsync(sandbox, "bomb", Sandboxes.Spec("perl", ["-e", Bomb]));
        var stderr = await ReadUntilAsync(bomb, "fork failed");
        var counts = new List<int>();
        for (var i = 0; i < 20; i++)
        {
            counts.Add(bomb.LivePids().Count);
            await Task.Yield();
        }

        var (other, otherOut) = await RunToEndAsync(sandbox, "other", Sandboxes.Spec("sh", ["-c", "for i in 1 2 3 4 5 6 7 8; do sleep 0 & done; wait; echo served"]));
        var stopped = await bomb.StopAsync(TimeSpan.Zero, Ct);

        TestContext.Current.TestOutputHelper?.WriteLine($"bomb processes: max {counts.Max()} under a cap of {limits.MaxProcesses}; stderr: {Tail(stderr)}");
        // The cap holds the workload's processes; bwrap's outer process and its init are the sandbox's own.
        Assert.All(counts, c => Assert.InRange(c, limits.MaxProcesses / 2, limits.MaxProcesses + 2));
        Assert.Contains("Resource temporarily unavailable", stderr, StringComparison.Ordinal);
        Assert.Equal(0, other.ExitCode);
        Assert.Equal("served", otherOut.Trim());
        Assert.True(stopped.Stopped);
        Assert.Empty(bomb.LivePids());
    }

    [Fact]
    public async Task A_tmp_filler_gets_no_space_past_the_tmp_cap_and_another_copy_is_still_served()
    {
        var limits = new CopyLimits { TmpBytes = 8 * 1024 * 1024 };
        var sandbox = await BubblewrapAsync(limits);
        var (exit, stdout) = await RunToEndAsync(sandbox, "filler", Sandboxes.Spec("sh", ["-c", "dd if=/dev/zero of=/tmp/fill bs=1M count=64 2>&1; echo size=$(stat -c %s /tmp/fill)"]));
        var (other, otherOut) = await RunToEndAsync(sandbox, "other", Sandboxes.Spec("sh", ["-c", "echo served > /tmp/x && cat /tmp/x"]));

        TestContext.Current.TestOutputHelper?.WriteLine(stdout);
        Assert.Contains("No space left on device", stdout, StringComparison.Ordinal);
        var size = long.Parse(stdout[(stdout.LastIndexOf("size=", StringComparison.Ordinal) + 5)..].Trim(), CultureInfo.InvariantCulture);
        Assert.InRange(size, 1, limits.TmpBytes);
        Assert.Equal(0, exit.ExitCode);
        Assert.Equal(0, other.ExitCode);
        Assert.Equal("served", otherOut.Trim());
    }

    [Theory]
    [InlineData("bubblewrap")]
    [InlineData("process")]
    public async Task A_disk_filler_is_stopped_at_the_disk_cap_and_another_copy_is_still_served(string kind)
    {
        var limits = new CopyLimits { DiskBytes = 16 * 1024 * 1024, DiskCheckInterval = TimeSpan.FromMilliseconds(100) };
        var sandbox = kind == "bubblewrap" ? await BubblewrapAsync(limits) : ProcessSandbox(limits);
        // Many files (no single one is large): only the watch on the folder's total can stop this.
        var spec = Sandboxes.Spec("sh", ["-c", "i=0; while :; do head -c 1048576 /dev/zero > \"$COINOP_WORK_DIR/f$i\" || exit 3; i=$((i+1)); done"]);
        var launch = await LaunchAsync(sandbox, "filler", spec);
        await using (launch.Folders)
        {
            await using var filler = await sandbox.StartAsync(launch, Ct);
            var fillerOutput = Sandboxes.ReadAllAsync(filler);
            var exit = await filler.Exited.WaitAsync(TimeSpan.FromSeconds(120), Ct);
            var (_, stderr) = await fillerOutput;
            var (other, otherOut) = await RunToEndAsync(sandbox, "other", Sandboxes.Spec("sh", ["-c", "echo served > \"$COINOP_WORK_DIR/x\" && cat \"$COINOP_WORK_DIR/x\""]));

            TestContext.Current.TestOutputHelper?.WriteLine($"{kind}: exit {exit.ExitCode}, {exit.LimitExceeded}; {Directory.GetFiles(launch.Folders.Work).Length} files written");
            Assert.NotNull(exit.LimitExceeded);
            Assert.Contains("disk cap", exit.LimitExceeded, StringComparison.Ordinal);
            Assert.Contains("disk cap", stderr, StringComparison.Ordinal);
            Assert.NotEqual(0, exit.ExitCode);
            Assert.Empty(filler.LivePids());
            Assert.Equal(0, other.ExitCode);
            Assert.Equal("served", otherOut.Trim());
        }
    }

    /// <summary>
    /// Empty files, links and folders take no block of their own but an inode each of the host's filesystem: counted by
    /// their blocks alone, 8,192 of them were a few hundred KiB of folder, and a copy could use up the host's inodes well
    /// within its byte cap. Every entry counts at least one block, so they are over a 16 MiB cap.
    /// </summary>
    [Theory]
    [InlineData(": > \"$COINOP_WORK_DIR/e$i\"")]
    [InlineData("ln -s / \"$COINOP_WORK_DIR/l$i\"")]
    public async Task Empty_entries_count_against_the_disk_cap(string make)
    {
        var limits = new CopyLimits { DiskBytes = 16 * 1024 * 1024, DiskCheckInterval = TimeSpan.FromHours(1) };
        var sandbox = await BubblewrapAsync(limits);
        var spec = Sandboxes.Spec("sh", ["-c", $"i=0; while [ $i -lt 8192 ]; do {make} || exit 3; i=$((i+1)); done"]);
        var launch = await LaunchAsync(sandbox, "entries", spec);
        await using (launch.Folders)
        {
            await using var copy = await sandbox.StartAsync(launch, Ct);
            var exit = await copy.Exited.WaitAsync(TimeSpan.FromSeconds(60), Ct);

            Assert.Equal(0, exit.ExitCode);
            Assert.Equal(8192, Directory.GetFileSystemEntries(launch.Folders.Work).Length);
            Assert.Contains("disk cap", DiskWatch.Check(launch.Folders, limits.DiskBytes), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_single_file_never_grows_past_the_disk_cap()
    {
        var limits = new CopyLimits { DiskBytes = 16 * 1024 * 1024, DiskCheckInterval = TimeSpan.FromHours(1) };
        var sandbox = await BubblewrapAsync(limits);
        var spec = Sandboxes.Spec("sh", ["-c", "dd if=/dev/zero of=/work/big bs=1M count=64 2>&1; echo rc=$?"]);
        var launch = await LaunchAsync(sandbox, "big", spec);
        await using (launch.Folders)
        {
            await using var copy = await sandbox.StartAsync(launch, Ct);
            var output = Sandboxes.ReadAllAsync(copy);
            await copy.Exited.WaitAsync(TimeSpan.FromSeconds(60), Ct);
            var (stdout, _) = await output;

            TestContext.Current.TestOutputHelper?.WriteLine(stdout);
            // SIGXFSZ (153 from the shell) or "File too large": the write past the cap fails either way.
            Assert.DoesNotContain("rc=0", stdout, StringComparison.Ordinal);
            Assert.Equal(limits.DiskBytes, new FileInfo(Path.Combine(launch.Folders.Work, "big")).Length);
        }
    }

    [Fact]
    public async Task A_copy_can_make_no_user_namespace_and_refused_system_calls_fail_with_eperm()
    {
        Assert.SkipUnless(SeccompFilter.Supported, "no seccomp filter for this architecture");
        var sandbox = await BubblewrapAsync(new CopyLimits());
        var keyctl = SeccompFilter.KeyctlNumber.ToString(CultureInfo.InvariantCulture);
        // keyctl(KEYCTL_GET_KEYRING_ID, 0, 0): without the filter the kernel answers EINVAL/ENOKEY, not EPERM.
        var script = "unshare -U true 2>/dev/null; echo userns=$?; " +
            $"perl -e '$r = syscall({keyctl}, 0, 0, 0, 0, 0); print \"keyctl=$r errno=\", $!+0, \"\\n\"'";
        var (exit, stdout) = await RunToEndAsync(sandbox, "calls", Sandboxes.Spec("sh", ["-c", script]));

        TestContext.Current.TestOutputHelper?.WriteLine(stdout);
        Assert.Equal(0, exit.ExitCode);
        Assert.Contains("userns=1", stdout, StringComparison.Ordinal);
        Assert.Contains("keyctl=-1 errno=1", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Each_copy_of_a_root_agent_runs_as_a_uid_of_its_own_and_cannot_read_another_copys_environment()
    {
        Assert.SkipUnless(IsRoot, "per-copy uids are given by an agent running as root");
        // A plain process shares the host's /proc: only the uid stands between two tenants there.
        var sandbox = ProcessSandbox(new CopyLimits());
        var secretSpec = Sandboxes.Spec("sh", ["-c", "echo ready; exec sleep 600"]) with { Env = new Dictionary<string, string> { ["SECRET"] = "tenant-b-secret" } };
        await using var victim = await StartAsync(sandbox, "victim", secretSpec);
        await WaitForAsync(() => victim.LivePids().Any(p => Cmdline(p).StartsWith("sleep", StringComparison.Ordinal)));
        var target = victim.LivePids().First(p => Cmdline(p).StartsWith("sleep", StringComparison.Ordinal));

        var (exit, stdout) = await RunToEndAsync(sandbox, "thief", Sandboxes.Spec("sh", ["-c", $"id -u; cat /proc/{target}/environ 2>&1; echo; echo rc=$?"]));
        var victimUid = File.ReadAllLines($"/proc/{target}/status").First(l => l.StartsWith("Uid:", StringComparison.Ordinal)).Split('\t', StringSplitOptions.RemoveEmptyEntries)[1];

        TestContext.Current.TestOutputHelper?.WriteLine($"victim uid {victimUid}; thief: {stdout}");
        Assert.Equal(0, exit.ExitCode);
        Assert.DoesNotContain("tenant-b-secret", stdout, StringComparison.Ordinal);
        Assert.Contains("Permission denied", stdout, StringComparison.Ordinal);
        var thiefUid = stdout.Split('\n')[0].Trim();
        Assert.NotEqual(victimUid, thiefUid);
        Assert.NotEqual("0", thiefUid);
        Assert.NotEqual("65534", thiefUid);
    }

    [Fact]
    public void Copy_uids_are_unique_while_leased_and_reused_last()
    {
        var users = new CopyUsers(1000, 3);
        var a = users.Lease();
        var b = users.Lease();
        var c = users.Lease();
        Assert.Equal([1000, 1001, 1002], new[] { a, b, c });
        Assert.Null(users.Lease());
        users.Return(1001);
        Assert.Equal(1001, users.Lease());
        users.Return(1000);
        users.Return(1002);
        // Round-robin: the next is after the last given, not the lowest free.
        Assert.Equal(1002, users.Lease());
        Assert.Equal(1000, users.Lease());
    }

    private static Task<LocalSandbox> BubblewrapAsync(CopyLimits limits)
    {
        var options = new LocalSandboxOptions { Limits = limits };
        return LocalSandbox.CreateBubblewrapAsync(options, Sandboxes.Cgroups, TimeProvider.System, NullLogger.Instance, Ct);
    }

    private static LocalSandbox ProcessSandbox(CopyLimits limits) =>
        LocalSandbox.CreateProcess(new LocalSandboxOptions { Limits = limits }, Sandboxes.Cgroups, TimeProvider.System, NullLogger.Instance);

    private async Task<SandboxLaunch> LaunchAsync(ISandbox sandbox, string name, CopySpec spec) =>
        new(spec, await sandbox.PrepareAsync(spec, Path.Combine(_dir.Path, name), Ct));

    private async Task<IRunningCopy> StartAsync(ISandbox sandbox, string name, CopySpec spec) =>
        await sandbox.StartAsync(await LaunchAsync(sandbox, name, spec), Ct);

    private async Task<(CopyExit Exit, string Stdout)> RunToEndAsync(ISandbox sandbox, string name, CopySpec spec)
    {
        var launch = await LaunchAsync(sandbox, name, spec);
        await using (launch.Folders)
        {
            await using var copy = await sandbox.StartAsync(launch, Ct);
            var output = Sandboxes.ReadAllAsync(copy);
            var exit = await copy.Exited.WaitAsync(TimeSpan.FromSeconds(60), Ct);
            var (stdout, stderr) = await output;
            TestContext.Current.TestOutputHelper?.WriteLine($"{name}: exit {exit.ExitCode}, stderr: {Tail(stderr)}");
            return (exit, stdout);
        }
    }

    /// <summary>Reads the copy's stderr until <paramref name="text"/> shows up (or the copy ends).</summary>
    private static async Task<string> ReadUntilAsync(IRunningCopy copy, string text)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(60));
        var stderr = new System.Text.StringBuilder();
        await foreach (var chunk in copy.Output.ReadAllAsync(timeout.Token))
        {
            if (chunk.Stream == OutputStream.Stderr)
            {
                stderr.Append(System.Text.Encoding.UTF8.GetString(chunk.Data.Span));
                if (stderr.ToString().Contains(text, StringComparison.Ordinal))
                {
                    break;
                }
            }
        }

        return stderr.ToString();
    }

    private static async Task WaitForAsync(Func<bool> condition)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(60));
        while (!condition())
        {
            await Task.Delay(20, timeout.Token);
        }
    }

    private static string Cmdline(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ');
        }
        catch (IOException)
        {
            return "";
        }
    }

    private static string Tail(string s) => s.Length > 300 ? s[^300..].Trim() : s.Trim();
}
