using System.Net;
using System.Net.Sockets;
using System.Text;
using Coinop.Core.Sealing;
using Coinop.Core.Workloads;
using Coinop.Provider.Workloads;
using Coinop.Provider.Workloads.Bridge;
using Coinop.Provider.Workloads.Sandboxes;
using Coinop.TestKit;
using Microsoft.Extensions.Logging.Abstractions;
using NSec.Cryptography;

namespace Coinop.Provider.Tests.Workloads;

public sealed class WorkloadHostTests : IAsyncDisposable
{
    private readonly TempDirectory _dir = new("coinop-wh");
    private readonly Key _identity = Key.Create(SignatureAlgorithm.Ed25519);
    private WorkloadHost? _host;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

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
    public async Task Starts_for_old_or_used_epochs_are_refused_and_old_stops_never_stop_newer_copies()
    {
        var host = await HostAsync();
        var spec = Sleeper("w-epochs", 2);
        Assert.True((await host.StartAsync(spec, cancellationToken: Ct)).Started);

        Assert.Equal(StartRefusal.StaleEpoch, (await host.StartAsync(spec with { Epoch = 1 }, cancellationToken: Ct)).Refusal);
        Assert.Equal(StartRefusal.EpochAlreadyUsed, (await host.StartAsync(spec, cancellationToken: Ct)).Refusal);

        Assert.False(await host.StopAsync("w-epochs", 1, cancellationToken: Ct));
        Assert.Equal(2, host.Find("w-epochs")!.Value.Epoch);

        Assert.True(await host.StopAsync("w-epochs", 2, TimeSpan.FromSeconds(5), Ct));
        Assert.Null(host.Find("w-epochs"));
        Assert.Equal(StartRefusal.EpochAlreadyUsed, (await host.StartAsync(spec, cancellationToken: Ct)).Refusal);

        // A stop for an epoch never started here burns it too: a late start for it is refused.
        Assert.False(await host.StopAsync("w-epochs", 5, cancellationToken: Ct));
        Assert.Equal(StartRefusal.StaleEpoch, (await host.StartAsync(spec with { Epoch = 4 }, cancellationToken: Ct)).Refusal);
        Assert.Equal(StartRefusal.EpochAlreadyUsed, (await host.StartAsync(spec with { Epoch = 5 }, cancellationToken: Ct)).Refusal);
        Assert.True((await host.StartAsync(spec with { Epoch = 6 }, cancellationToken: Ct)).Started);
    }

    [Fact]
    public async Task A_newer_epoch_replaces_the_older_copy_which_is_gone_before_the_new_one_starts()
    {
        var host = await HostAsync();
        Assert.True((await host.StartAsync(Sleeper("w-replace", 1), cancellationToken: Ct)).Started);
        var old = host.Find("w-replace")!.Value.Copy!;
        var oldPids = old.LivePids();
        Assert.NotEmpty(oldPids);

        var started = await host.StartAsync(Sleeper("w-replace", 2), cancellationToken: Ct);
        Assert.True(started.Started);
        Assert.True(old.Exited.IsCompleted, "the old copy still ran when the new one started");
        Assert.All(oldPids, pid => Assert.False(Directory.Exists($"/proc/{pid}") && File.ReadAllText($"/proc/{pid}/cmdline").Contains("sleep", StringComparison.Ordinal)));
        Assert.Equal(2, host.Find("w-replace")!.Value.Epoch);
        Assert.Equal(1, host.Capacity().RunningCopies);
    }

    [Fact]
    public async Task Capacity_counts_running_copies_and_standbys_and_refuses_what_does_not_fit()
    {
        var host = await HostAsync(cpuCores: 1, memoryMb: 512);
        Assert.True((await host.StartAsync(Sleeper("w-cap-a", 1) with { CpuCores = 0.6 }, cancellationToken: Ct)).Started);
        var refused = await host.StartAsync(Sleeper("w-cap-b", 1) with { CpuCores = 0.6 }, cancellationToken: Ct);
        Assert.Equal(StartRefusal.OverCapacity, refused.Refusal);

        Assert.True(host.ReserveStandby("w-cap-c", 1, 0.4, 128));
        Assert.False(host.ReserveStandby("w-cap-d", 1, 0.1, 64));
        Assert.Equal(1.0, host.Capacity().ReservedCpuCores, 6);

        // The standby is promoted: its reservation becomes the copy's capacity.
        Assert.True((await host.StartAsync(Sleeper("w-cap-c", 2) with { CpuCores = 0.4, MemoryMb = 128 }, cancellationToken: Ct)).Started);
        Assert.Equal(0, host.Capacity().Standbys);

        Assert.True(await host.StopAsync("w-cap-a", 1, TimeSpan.FromSeconds(5), Ct));
        Assert.True((await host.StartAsync(Sleeper("w-cap-b", 2) with { CpuCores = 0.6 }, cancellationToken: Ct)).Started);
    }

    [Fact]
    public async Task Stop_everything_stops_every_copy_and_sigkills_those_that_ignore_sigterm()
    {
        var host = await HostAsync();
        var pids = new List<int>();
        for (var i = 0; i < 3; i++)
        {
            // The first one ignores SIGTERM and must be killed after the grace period.
            var spec = Sleeper($"w-all-{i}", 1) with { Args = ["-c", i == 0 ? "trap '' TERM; sleep 600 & wait; wait" : "sleep 600"] };
            Assert.True((await host.StartAsync(spec, cancellationToken: Ct)).Started);
            pids.AddRange(host.Find(spec.WorkloadId)!.Value.Copy!.LivePids());
        }

        await host.StopAllAsync(TimeSpan.FromMilliseconds(300), Ct).WaitAsync(TimeSpan.FromSeconds(30), Ct);
        Assert.Equal(0, host.Capacity().RunningCopies);
        var exits = new List<WorkloadExited>();
        while (host.Events.TryRead(out var e))
        {
            if (e is WorkloadExited x)
            {
                exits.Add(x);
            }
        }

        Assert.Equal(3, exits.Count);
        Assert.All(exits, x => Assert.True(x.Exit.Stopped));
        Assert.All(pids, pid => Assert.False(Directory.Exists($"/proc/{pid}") && File.ReadAllText($"/proc/{pid}/cmdline").Contains("sleep", StringComparison.Ordinal), $"pid {pid} survived"));
    }

    [Fact]
    public async Task Usage_records_are_signed_contiguous_and_plausible()
    {
        var host = await HostAsync(usageInterval: TimeSpan.FromMilliseconds(300));
        // Busy for about 1.5 s, then exit.
        var spec = Sleeper("w-usage", 1) with { Args = ["-c", "end=$(($(date +%s%N) + 1500000000)); while [ $(date +%s%N) -lt $end ]; do :; done; echo done"], CpuCores = 1 };
        Assert.True((await host.StartAsync(spec, cancellationToken: Ct)).Started);

        var records = new List<UsageRecord>();
        await foreach (var e in host.Events.ReadAllAsync(Ct))
        {
            if (e is WorkloadUsage u)
            {
                var verified = UsageRecord.Verify(u.Signed);
                Assert.NotNull(verified);
                Assert.Equal(u.Record with { CpuCoreSeconds = Math.Round(u.Record.CpuCoreSeconds, 6), MemoryMibSeconds = Math.Round(u.Record.MemoryMibSeconds, 6), WallSeconds = Math.Round(u.Record.WallSeconds, 6) }, verified);
                records.Add(verified);
            }
            else if (e is WorkloadExited x)
            {
                Assert.Equal(0, x.Exit.ExitCode);
                break;
            }
        }

        Assert.True(records.Count >= 3, $"{records.Count} records");
        for (var i = 1; i < records.Count; i++)
        {
            Assert.Equal(records[i - 1].WindowEnd, records[i].WindowStart);
        }

        Assert.All(records, r => Assert.True(r.CpuCoreSeconds >= 0 && r.MemoryMibSeconds >= 0 && r.WallSeconds >= 0 && r.NetBytes == 0));
        var cpu = records.Sum(r => r.CpuCoreSeconds);
        var wall = records.Sum(r => r.WallSeconds);
        TestContext.Current.TestOutputHelper?.WriteLine($"{records.Count} records: cpu {cpu:F3} core-s, wall {wall:F3} s, memory {records.Sum(r => r.MemoryMibSeconds):F3} MiB-s");
        Assert.InRange(wall, 1.4, 30);
        // A busy loop gets what the machine gives it (0.3 core-s of 1.6 s was seen on a loaded CI box): some CPU, and
        // never more than one core over the wall time.
        Assert.InRange(cpu, 0.01, wall * 1.1);
        Assert.True(records.Sum(r => r.MemoryMibSeconds) > 0);
    }

    [Fact]
    public async Task Bridge_bytes_appear_in_usage_records()
    {
        // The probe must be visible inside the sandbox: stage it outside the folders bubblewrap hides (/work, /tmp).
        var stage = Path.Combine("/var/tmp", "coinop-probe-" + Guid.NewGuid().ToString("N"));
        Probe.StageInto(stage);
        try
        {
            var sandboxOptions = new LocalSandboxOptions();
            sandboxOptions.ReadOnlyPaths.Add(stage);
            var host = await HostAsync(sandbox: await LocalSandbox.CreateBubblewrapAsync(sandboxOptions, Sandboxes.Cgroups, TimeProvider.System, NullLogger.Instance, Ct));
            var spec = new CopySpec("w-net", 1, Probe.DotnetHost, [Path.Combine(stage, "probe", "coinop-workload-probe.dll"), "echo", "7000"],
                new Dictionary<string, string> { ["DOTNET_GCHeapHardLimit"] = "0x4000000" }, 1, 1024, Port: 7000, AccessCredential: "cred-w-net");
            var started = await host.StartAsync(spec, cancellationToken: Ct);
            Assert.True(started.Started, started.Error);
            await foreach (var log in host.Logs.ReadAllAsync(Ct))
            {
                if (Encoding.UTF8.GetString(log.Data.Span).Contains("listening", StringComparison.Ordinal))
                {
                    break;
                }
            }

            using (var client = new TcpClient())
            {
                await client.ConnectAsync(IPAddress.Loopback, started.BridgePort!.Value, Ct);
                var stream = client.GetStream();
                await stream.WriteAsync(PortBridge.Preamble("cred-w-net").Concat("ping-pong"u8.ToArray()).ToArray(), Ct);
                client.Client.Shutdown(SocketShutdown.Send);
                using var reader = new StreamReader(stream);
                Assert.Equal("ping-pong", await reader.ReadToEndAsync(Ct));
            }

            Assert.True(await host.StopAsync("w-net", 1, TimeSpan.FromSeconds(5), Ct));
            long net = 0;
            while (host.Events.TryRead(out var e))
            {
                if (e is WorkloadUsage u)
                {
                    net += UsageRecord.Verify(u.Signed)!.NetBytes;
                }
            }

            Assert.Equal(18, net);
        }
        finally
        {
            Directory.Delete(stage, recursive: true);
        }
    }

    [Fact]
    public async Task A_checkpoint_of_one_epoch_restores_into_the_next()
    {
        var host = await HostAsync();
        var key = CheckpointKey.Create();
        var first = Sleeper("w-ckpt", 1) with { WantsStateDir = true, Args = ["-c", "echo 41 > \"$COINOP_STATE_DIR/counter\"; echo saved; sleep 600"] };
        Assert.True((await host.StartAsync(first, cancellationToken: Ct)).Started);
        await WaitForLogAsync(host, "saved");
        byte[] checkpoint;
        await using (var archive = await host.CheckpointAsync("w-ckpt", 1, key, Ct))
        {
            Assert.NotNull(archive);
            using var bytes = new MemoryStream();
            await archive.Content.CopyToAsync(bytes, Ct);
            checkpoint = bytes.ToArray();
            Assert.Equal(archive.Length, checkpoint.Length);
            Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(checkpoint)), archive.Summary.Sha256);
        }

        Assert.Null(await host.CheckpointAsync("w-ckpt", 7, key, Ct));
        Assert.True(await host.StopAsync("w-ckpt", 1, TimeSpan.FromSeconds(5), Ct));

        var wrongKey = await host.StartAsync(first with { Epoch = 2 }, checkpoint, CheckpointKey.Create(), Ct);
        Assert.Equal(StartRefusal.CheckpointFailed, wrongKey.Refusal);
        Assert.Equal(0, host.Capacity().RunningCopies);

        var second = first with { Epoch = 3, Args = ["-c", "echo \"restored $(cat \"$COINOP_STATE_DIR/counter\")\""] };
        Assert.True((await host.StartAsync(second, checkpoint, key, Ct)).Started);
        await WaitForLogAsync(host, "restored 41");
    }

    private static async Task WaitForLogAsync(WorkloadHost host, string text)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(30));
        await foreach (var log in host.Logs.ReadAllAsync(timeout.Token))
        {
            if (Encoding.UTF8.GetString(log.Data.Span).Contains(text, StringComparison.Ordinal))
            {
                return;
            }
        }
    }

    private async Task<WorkloadHost> HostAsync(double cpuCores = 4, long memoryMb = 4096, TimeSpan? usageInterval = null, ISandbox? sandbox = null)
    {
        sandbox ??= await Sandboxes.BubblewrapAsync();
        var options = new WorkloadHostOptions
        {
            DataDirectory = _dir.Path,
            CpuCores = cpuCores,
            MemoryMb = memoryMb,
            UsageInterval = usageInterval ?? TimeSpan.FromHours(1),
            StopGrace = TimeSpan.FromSeconds(5),
            BridgeAddress = IPAddress.Loopback,
        };
        _host = new WorkloadHost(sandbox, options, _identity, TimeProvider.System, NullLogger<WorkloadHost>.Instance);
        return _host;
    }

    private static CopySpec Sleeper(string id, long epoch) =>
        new(id, epoch, "sh", ["-c", "sleep 600"], new Dictionary<string, string>(), 0.5, 128);
}
