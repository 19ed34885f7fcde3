using Coinop.TestKit;

namespace Coinop.Provider.Tests.Workloads;

public class BubblewrapSandboxTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Output_is_streamed_and_the_exit_code_reported()
    {
        var sandbox = await Sandboxes.BubblewrapAsync();
        using var dir = new TempDirectory();
        await using var copy = await sandbox.StartAsync(await Sandboxes.LaunchAsync(sandbox, dir, Sandboxes.Spec("sh", ["-c", "echo out-line; echo err-line >&2; exit 7"])), Ct);
        var (stdout, stderr) = await Sandboxes.ReadAllAsync(copy);
        var exit = await copy.Exited;
        Assert.Equal("out-line\n", stdout);
        Assert.Equal("err-line\n", stderr);
        Assert.Equal(7, exit.ExitCode);
        Assert.False(exit.OomKilled);
    }

    [Fact]
    public async Task The_copy_sees_only_its_own_processes_loopback_and_a_private_work_dir()
    {
        var sandbox = await Sandboxes.BubblewrapAsync();
        Assert.Equal("bubblewrap", sandbox.Kind);
        using var dir = new TempDirectory();
        var outside = Path.Combine(dir.Path, "outside-marker");
        const string script = """
            echo "pids: $(ls /proc | grep -c '^[0-9][0-9]*$')"
            echo "ifaces: $(ls /sys/class/net 2>/dev/null | tr '\n' ' ')$(cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' ' | tr '\n' ' ')"
            echo "user: $(id -u)"
            echo "env: $(env | cut -d= -f1 | sort | tr '\n' ' ')"
            touch /work/inside && echo "work: writable"
            touch /usr/evil 2>/dev/null && echo "usr: WRITABLE" || echo "usr: read-only"
            touch /evil 2>/dev/null && echo "root: WRITABLE" || echo "root: read-only"
            ls /root >/dev/null 2>&1 && echo "home: VISIBLE" || echo "home: hidden"
            cat /etc/shadow >/dev/null 2>&1 && echo "shadow: READABLE" || echo "shadow: unreadable"
            """;
        var spec = Sandboxes.Spec("sh", ["-c", script]) with { Env = new Dictionary<string, string> { ["GREETING"] = "hi" } };
        var launch = await Sandboxes.LaunchAsync(sandbox, dir, spec);
        await using var copy = await sandbox.StartAsync(launch, Ct);
        var (stdout, stderr) = await Sandboxes.ReadAllAsync(copy);
        Assert.Equal(0, (await copy.Exited).ExitCode);

        // Inside: bwrap's init, the shell and the subshell running ls: a handful, never the host's hundreds.
        var pids = int.Parse(Line(stdout, "pids: "), System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(pids, 1, 5);
        Assert.Equal(["lo"], Line(stdout, "ifaces: ").Split(' ', StringSplitOptions.RemoveEmptyEntries).Distinct());
        Assert.Equal("writable", Line(stdout, "work: "));
        Assert.True(File.Exists(Path.Combine(launch.Folders.Work, "inside")));
        Assert.Equal("read-only", Line(stdout, "usr: "));
        Assert.Equal("read-only", Line(stdout, "root: "));
        Assert.Equal("hidden", Line(stdout, "home: "));
        Assert.Equal("unreadable", Line(stdout, "shadow: "));
        Assert.NotEqual("0", Line(stdout, "user: "));
        var env = Line(stdout, "env: ").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains("GREETING", env);
        Assert.DoesNotContain("DOTNET_ROOT", env);
        Assert.All(env, name => Assert.True(name is "GREETING" or "PATH" or "HOME" or "PWD" or "SHLVL" or "_" || name.StartsWith("COINOP_", StringComparison.Ordinal), $"unexpected variable {name}; stderr: {stderr}"));
        Assert.False(File.Exists(outside));
    }

    private static string Line(string output, string prefix) =>
        output.Split('\n').FirstOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal))?[prefix.Length..].Trim()
        ?? throw new Xunit.Sdk.XunitException($"no line '{prefix}' in:\n{output}");
}
