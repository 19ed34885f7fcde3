using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Coinop.Core.Sealing;
using Coinop.Provider.Workloads;
using Coinop.Provider.Workloads.Bridge;
using Coinop.Provider.Workloads.Checkpoints;
using Coinop.Provider.Workloads.Sandboxes;
using Coinop.TestKit;
using Microsoft.Extensions.Logging.Abstractions;
using NSec.Cryptography;

namespace Coinop.Provider.Tests.Workloads;

/// <summary>
/// A tenant attacking the provider's host from inside a bubblewrap copy: through the port bridge, and through the
/// agent's own work on the copy's folders (chown, checkpoint archive, restore). Each test carries out the attack against
/// real sandboxed processes and checks the host is untouched.
/// </summary>
public sealed class SandboxEscapeTests : IAsyncDisposable
{
    private readonly TempDirectory _dir = new("coinop-esc");
    private readonly Key _identity = Key.Create(SignatureAlgorithm.Ed25519);
    private WorkloadHost? _host;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static bool IsRoot => Environment.UserName == "root";

    public async ValueTask DisposeAsync()
    {
        if (_host is not null)
        {
            await _host.DisposeAsync();
        }

        _identity.Dispose();
        _dir.Dispose();
    }

    [Fact]
    public async Task A_workload_that_swaps_the_bridge_socket_for_a_link_reaches_nothing_on_the_host()
    {
        using var probe = ProbeSocket.Listen(Path.Combine(_dir.Path, "probe.sock"));
        var sandbox = await Sandboxes.BubblewrapAsync();
        var spec = Sandboxes.Spec("sh", [], memoryMb: 4096, port: 7070);
        var launch = await Sandboxes.LaunchAsync(sandbox, _dir, spec);
        Probe.StageInto(launch.Folders.Work);
        spec = spec with
        {
            Args = ["-c", BridgeAttack.Script, "attack", probe.Path, Probe.DotnetHost, "/work/probe/coinop-workload-probe.dll", "7070"],
            Env = new Dictionary<string, string> { ["DOTNET_GCHeapHardLimit"] = "0x4000000" },
        };
        await using var copy = await sandbox.StartAsync(launch with { Spec = spec }, Ct);
        var output = await WaitForOutputAsync(copy, "listening");
        await using var bridge = PortBridge.Start(new IPEndPoint(IPAddress.Loopback, 0), spec.AccessCredential!, copy.ConnectToPortAsync, TimeSpan.FromSeconds(5), NullLogger.Instance);

        var reply = await ExchangeAsync(bridge.Port, spec.AccessCredential!, "hello through the bridge");

        TestContext.Current.TestOutputHelper?.WriteLine(output.Trim());
        Assert.Equal(0, probe.Accepted);
        Assert.Equal("hello through the bridge", reply);
    }

    [Fact]
    public async Task A_workload_that_swaps_the_bridge_socket_reaches_nothing_when_the_agent_is_not_root()
    {
        Assert.SkipUnless(IsRoot, "runs the agent as an unprivileged user, which needs root to switch to");
        Assert.SkipUnless(UnprivilegedCanRun(), "the built probe or the dotnet host is not readable by an unprivileged user here");
        var agentDir = _dir.Sub("agent");
        File.SetUnixFileMode(_dir.Path, (UnixFileMode)0x1ED);
        LinuxChown(agentDir, NobodyId);
        using var probe = ProbeSocket.Listen(Path.Combine(_dir.Path, "probe.sock"));
        File.SetUnixFileMode(probe.Path, (UnixFileMode)0x1FF);

        // The whole agent side (sandbox, bridge, client) runs as nobody in a child process: the in-sandbox forwarder route.
        var info = new ProcessStartInfo("setpriv", ["--reuid", NobodyId.ToString(System.Globalization.CultureInfo.InvariantCulture), "--regid", NobodyId.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--clear-groups", "--", Probe.DotnetHost, Probe.Dll, "bridge-attack", agentDir, probe.Path])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        info.Environment["DOTNET_CLI_HOME"] = agentDir;
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync(Ct);
        var stderr = process.StandardError.ReadToEndAsync(Ct);
        await process.WaitForExitAsync(Ct).WaitAsync(TimeSpan.FromMinutes(2), Ct);
        var text = await stdout;
        TestContext.Current.TestOutputHelper?.WriteLine(text + await stderr);

        Assert.Equal(0, probe.Accepted);
        Assert.Contains("reply: hello through the bridge", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_link_restored_from_a_checkpoint_keeps_the_host_tree_it_points_to_owned_as_it_was()
    {
        Assert.SkipUnless(IsRoot, "only a root agent changes owners");
        var outside = _dir.Sub("outside");
        Directory.CreateDirectory(Path.Combine(outside, "sub"));
        await File.WriteAllTextAsync(Path.Combine(outside, "shadow"), "host file", Ct);
        await File.WriteAllTextAsync(Path.Combine(outside, "sub", "deep"), "host file", Ct);
        var state = _dir.Sub("crafted-state");
        File.CreateSymbolicLink(Path.Combine(state, "etc"), outside);
        Directory.CreateDirectory(Path.Combine(state, "nested"));
        File.CreateSymbolicLink(Path.Combine(state, "nested", "again"), outside);
        var key = CheckpointKey.Create();
        var checkpoint = await CheckpointTests.CreateAsync(state, key);

        var host = await HostAsync();
        var spec = new CopySpec("w-chown", 1, "sh", ["-c", "ls -la /state; echo ready; sleep 600"], new Dictionary<string, string>(), 0.5, 128, WantsStateDir: true);
        var started = await host.StartAsync(spec, checkpoint, key, Ct);
        Assert.True(started.Started, started.Error);
        await WaitForLogAsync(host, "ready");

        foreach (var path in Directory.EnumerateFileSystemEntries(outside, "*", SearchOption.AllDirectories).Append(outside))
        {
            var owner = OwnerOf(path);
            Assert.True(owner == 0, $"{path} now belongs to uid {owner}");
        }

        // The links themselves were restored as links, owned by the copy's user.
        var restored = Path.Combine(_dir.Path, "workloads", "w-chown-e1", "state", "etc");
        Assert.Equal(outside, new FileInfo(restored).LinkTarget);
    }

    [Fact]
    public async Task A_copy_racing_renames_and_links_against_checkpoints_never_gets_a_host_file_into_one()
    {
        // What the provider keeps beside its copies: its identity key.
        var secretDir = _dir.Sub("provider-secrets");
        const string Secret = "HOST-IDENTITY-KEY-0123456789";
        await File.WriteAllTextAsync(Path.Combine(secretDir, "identity.key"), Secret, Ct);
        File.SetUnixFileMode(secretDir, (UnixFileMode)0x1ED);

        var host = await HostAsync();
        // The copy swaps its folder 'a' with a link to the host's folder and back, atomically (renameat2 with
        // RENAME_EXCHANGE, from perl, which is in Debian's essential set) and as fast as the kernel can: a walk that
        // lists 'a' as a folder, then opens a path through it, reads the host's folder.
        const string Race = """
            mkdir -p /state/a && echo mine > /state/a/identity.key && ln -s "$1" /state/x && echo racing
            case "$(uname -m)" in aarch64) nr=276 ;; *) nr=316 ;; esac
            exec perl -e 'my ($nr, $a, $x) = (shift, "/state/a", "/state/x"); while (1) { syscall($nr, -100, $a, -100, $x, 2) == 0 or die "renameat2: $!" }' "$nr"
            """;
        var spec = new CopySpec("w-race", 1, "sh", ["-c", Race, "race", secretDir], new Dictionary<string, string>(), 1, 256, WantsStateDir: true);
        Assert.True((await host.StartAsync(spec, cancellationToken: Ct)).Started);
        await WaitForLogAsync(host, "racing");
        var key = CheckpointKey.Create();
        var archived = 0;
        var failures = new List<string>();
        const int Checkpoints = 150;
        for (var i = 0; i < Checkpoints; i++)
        {
            var target = Path.Combine(_dir.Path, "restored-" + i);
            try
            {
                await using (var archive = await host.CheckpointAsync("w-race", 1, key, Ct))
                {
                    using var bytes = new MemoryStream();
                    await archive!.Content.CopyToAsync(bytes, Ct);
                    await CheckpointTests.RestoreAsync(bytes.ToArray(), key, target);
                }
            }
            catch (Exception ex) when (ex is IOException or CheckpointException or UnauthorizedAccessException)
            {
                failures.Add(ex.Message);
                archived--;
            }

            archived++;
            // Whatever a restore wrote, even one that failed part way, must hold nothing of the host's.
            var written = Directory.Exists(target)
                ? Directory.EnumerateFiles(target, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = FileAttributes.ReparsePoint })
                : [];
            foreach (var file in written)
            {
                Assert.DoesNotContain(Secret, await File.ReadAllTextAsync(file, Ct), StringComparison.Ordinal);
            }
        }

        TestContext.Current.TestOutputHelper?.WriteLine($"{archived} checkpoints taken during the race, {failures.Count} failed: {string.Join("; ", failures.Distinct())}");
        Assert.True(archived >= Checkpoints / 2, $"only {archived} of {Checkpoints} checkpoints succeeded: {string.Join("; ", failures.Distinct())}");
    }

    private const int NobodyId = 65534;

    private static int OwnerOf(string path)
    {
        using var parent = Posix.OpenDirectory(Path.GetDirectoryName(path)!);
        return Posix.StatAt(parent, Path.GetFileName(path)).Uid;
    }

    private static bool UnprivilegedCanRun()
    {
        using var test = Process.Start(new ProcessStartInfo("setpriv", ["--reuid", "65534", "--regid", "65534", "--clear-groups", "--", "test", "-r", Probe.Dll])
        {
            RedirectStandardError = true,
        })!;
        test.WaitForExit();
        return test.ExitCode == 0;
    }

    private static void LinuxChown(string path, int id)
    {
        using var chown = Process.Start("chown", [$"{id}:{id}", path]);
        chown.WaitForExit();
    }

    private async Task<WorkloadHost> HostAsync()
    {
        var options = new WorkloadHostOptions
        {
            DataDirectory = _dir.Path,
            CpuCores = 4,
            MemoryMb = 4096,
            UsageInterval = TimeSpan.FromHours(1),
            StopGrace = TimeSpan.FromSeconds(5),
            BridgeAddress = IPAddress.Loopback,
        };
        _host = new WorkloadHost(await Sandboxes.BubblewrapAsync(), options, _identity, TimeProvider.System, NullLogger<WorkloadHost>.Instance);
        return _host;
    }

    private static async Task WaitForLogAsync(WorkloadHost host, string text)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(60));
        var seen = new StringBuilder();
        await foreach (var log in host.Logs.ReadAllAsync(timeout.Token))
        {
            seen.Append(Encoding.UTF8.GetString(log.Data.Span));
            if (seen.ToString().Contains(text, StringComparison.Ordinal))
            {
                return;
            }
        }
    }

    private static async Task<string> WaitForOutputAsync(IRunningCopy copy, string text)
    {
        var seen = new StringBuilder();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(60));
        await foreach (var chunk in copy.Output.ReadAllAsync(timeout.Token))
        {
            seen.Append(Encoding.UTF8.GetString(chunk.Data.Span));
            if (seen.ToString().Contains(text, StringComparison.Ordinal))
            {
                return seen.ToString();
            }
        }

        throw new Xunit.Sdk.XunitException($"the copy ended before printing '{text}': {seen}; exit {(await copy.Exited).ExitCode}");
    }

    private static async Task<string> ExchangeAsync(int port, string credential, string message)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, port, Ct);
        var stream = client.GetStream();
        try
        {
            await stream.WriteAsync(PortBridge.Preamble(credential).Concat(Encoding.UTF8.GetBytes(message)).ToArray(), Ct);
            client.Client.Shutdown(SocketShutdown.Send);
            using var reader = new StreamReader(stream);
            return await reader.ReadToEndAsync(Ct).WaitAsync(TimeSpan.FromSeconds(60), Ct);
        }
        catch (IOException)
        {
            return "";
        }
    }
}

/// <summary>A unix socket on the host standing for Docker's, systemd's or D-Bus's: it counts every connection it gets.</summary>
internal sealed class ProbeSocket : IDisposable
{
    private readonly Socket _listener;
    private int _accepted;

    private ProbeSocket(Socket listener, string path)
    {
        _listener = listener;
        Path = path;
        _ = AcceptAsync();
    }

    public string Path { get; }

    public int Accepted => Volatile.Read(ref _accepted);

    public static ProbeSocket Listen(string path)
    {
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen(16);
        return new ProbeSocket(listener, path);
    }

    public void Dispose() => _listener.Dispose();

    private async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                using var client = await _listener.AcceptAsync();
                Interlocked.Increment(ref _accepted);
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
        }
    }
}

/// <summary>The workload side of the bridge attack (tests/Coinop.WorkloadProbe has the same script for its unprivileged run).</summary>
internal static class BridgeAttack
{
    /// <summary>$1 the host socket to reach, $2 dotnet, $3 the probe dll, $4 the port: swap the bridge's socket for a link, then serve the port.</summary>
    public const string Script = """
        S=/run/coinop-bridge/port.sock
        for i in $(seq 100); do [ -S "$S" ] && break; [ -d /run/coinop-bridge ] || break; sleep 0.1; done
        if rm -f "$S" 2>/dev/null && ln -s "$1" "$S" 2>/dev/null; then echo "swapped $S for a link to $1"; else echo "could not swap the bridge socket"; fi
        exec "$2" "$3" echo "$4"
        """;
}
