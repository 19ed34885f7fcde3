using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Net;
using Coinop.Core.Protocol;
using Coinop.Core.Sealing;
using Coinop.Core.Workloads;
using Coinop.Provider.Hosting;
using Coinop.Provider.Tests.Infrastructure;
using Coinop.Provider.Workloads;
using Coinop.Provider.Workloads.Checkpoints;
using Coinop.TestKit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using NSec.Cryptography;

namespace Coinop.Provider.Tests.Workloads;

/// <summary>The checkpoint loop of a real copy: an attempt that fails is logged and counted, and the loop goes on.</summary>
public sealed class CheckpointLoopTests : IAsyncDisposable
{
    private readonly TempDirectory _dir = new("coinop-ckl");
    private readonly Key _identity = Key.Create(SignatureAlgorithm.Ed25519);
    private readonly ServiceProvider _services = new ServiceCollection().AddMetrics().BuildServiceProvider();
    private WorkloadHost? _host;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask DisposeAsync()
    {
        if (_host is not null)
        {
            await _host.DisposeAsync();
        }

        await _services.DisposeAsync();
        _identity.Dispose();
        _dir.Dispose();
    }

    [Fact]
    public async Task A_state_too_large_to_upload_is_logged_and_counted_and_the_next_checkpoint_goes_out()
    {
        var metrics = new ProviderMetrics(_services.GetRequiredService<IMeterFactory>());
        var outcomes = new ConcurrentQueue<string>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Name == "coinop.workloads.checkpoints")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, _, tags, _) => outcomes.Enqueue((string)tags.ToArray().Single(t => t.Key == "outcome").Value!));
        listener.Start();
        var logs = new CapturedLogs();
        using var factory = LoggerFactory.Create(b => b.AddProvider(logs));

        _host = new WorkloadHost(await Sandboxes.BubblewrapAsync(), new WorkloadHostOptions
        {
            DataDirectory = _dir.Path,
            CpuCores = 2,
            MemoryMb = 1024,
            UsageInterval = TimeSpan.FromHours(1),
            BridgeAddress = IPAddress.Loopback,
            MaxCheckpointBytes = 256 * 1024,
        }, _identity, TimeProvider.System, NullLogger<WorkloadHost>.Instance, metrics);
        var id = WorkloadIds.New();
        // Incompressible state four times the cap; once the test's marker appears in /work, the state shrinks to a line.
        var spec = new CopySpec(id, 1, "sh", ["-c", """
            head -c 1048576 /dev/urandom > /state/big && echo big
            while [ ! -e /work/shrink ]; do sleep 0.05; done
            rm /state/big; echo small > /state/marker; echo shrunk; sleep 600
            """], new Dictionary<string, string>(), 0.5, 128, WantsStateDir: true);
        var started = await _host.StartAsync(spec, cancellationToken: Ct);
        Assert.True(started.Started, started.Error);
        await WaitForLogAsync("big");

        var link = new RecordingLink();
        var loop = new CheckpointLoop(_host, () => link, TimeProvider.System, factory.CreateLogger("checkpoints"));
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var running = loop.RunAsync(id, 1, CheckpointKey.Create(), TimeSpan.FromMilliseconds(100), stop.Token);

        var failed = await logs.WaitForAsync(e => e.EventId == 3102, TimeSpan.FromSeconds(60));
        Assert.Equal(LogLevel.Warning, failed.Level);
        Assert.False(running.IsCompleted, "the loop ended after a failed checkpoint");
        Assert.Empty(link.Checkpoints);

        await File.WriteAllTextAsync(Path.Combine(_dir.Path, "workloads", $"{id}-e1", "work", "shrink"), "", Ct);
        await WaitForLogAsync("shrunk");
        var sent = await link.NextCheckpointAsync().WaitAsync(TimeSpan.FromSeconds(60), Ct);
        Assert.Equal(sent.Size, link.FirstBytes());
        Assert.Contains("too_large", outcomes);
        Assert.Contains("sent", outcomes);

        await stop.CancelAsync();
        await running.WaitAsync(TimeSpan.FromSeconds(30), Ct);
    }

    private async Task WaitForLogAsync(string text)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(60));
        var seen = "";
        await foreach (var log in _host!.Logs.ReadAllAsync(timeout.Token))
        {
            seen += System.Text.Encoding.UTF8.GetString(log.Data.Span);
            if (seen.Contains(text, StringComparison.Ordinal))
            {
                return;
            }
        }
    }

    /// <summary>A market link that keeps checkpoint chunks and ends.</summary>
    private sealed class RecordingLink : IWorkloadLink
    {
        private readonly ConcurrentQueue<int> _chunks = new();
        private readonly TaskCompletionSource<WorkloadCheckpoint> _first = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public ConcurrentQueue<WorkloadCheckpoint> Checkpoints { get; } = new();

        public Task<WorkloadCheckpoint> NextCheckpointAsync() => _first.Task;

        /// <summary>The bytes of checkpoint chunks sent before the first checkpoint's end.</summary>
        public long FirstBytes() => _chunks.Sum();

        public ValueTask<bool> SendAsync(ProtocolMessage message, CancellationToken cancellationToken)
        {
            if (message is WorkloadCheckpoint checkpoint)
            {
                Checkpoints.Enqueue(checkpoint);
                _first.TrySetResult(checkpoint);
            }

            return ValueTask.FromResult(true);
        }

        public ValueTask<bool> SendChunkAsync(byte kind, Guid id, long epoch, byte? lead, ReadOnlyMemory<byte> data, bool droppable, CancellationToken cancellationToken)
        {
            if (kind == ChunkFrame.KindCheckpointChunk && !_first.Task.IsCompleted)
            {
                _chunks.Enqueue(data.Length);
            }

            return ValueTask.FromResult(true);
        }
    }
}
