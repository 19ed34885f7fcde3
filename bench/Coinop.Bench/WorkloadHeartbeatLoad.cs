using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Security.Cryptography;
using Coinop.Core.Identity;
using Coinop.Core.Protocol;
using Coinop.Market.Hosting;
using Coinop.Market.Workloads;
using Microsoft.Extensions.Logging;
using NSec.Cryptography;

namespace Coinop.Bench;

/// <summary>
/// The cost of a workload heartbeat on the market: a real market node (in this process, SQLite, default timings) and
/// protocol-speaking providers over real WebSockets, each running <c>copies</c> workloads the market placed on it. Each
/// provider sends its next workload heartbeat as soon as the previous one is acknowledged (closed loop), so the market's
/// supervisor is the bottleneck; reported are the supervisor's own time per heartbeat (its histogram), the throughput,
/// and this process's CPU per heartbeat and per copy renewal (an upper bound: it includes the providers' side).
/// </summary>
public static class WorkloadHeartbeatLoad
{
    public static async Task RunAsync(int providers, int copies, int seconds)
    {
        var dir = Directory.CreateTempSubdirectory("coinop-hb-").FullName;
        try
        {
            await using var market = MarketHost.Build(new MarketOptions { Urls = "http://127.0.0.1:0", DataDir = dir, Free = true },
                b => b.Logging.ClearProviders());
            await market.StartAsync();
            var url = market.BoundAddress();
            var fakes = new List<FakeProvider>();
            for (var i = 0; i < providers; i++)
            {
                fakes.Add(await FakeProvider.ConnectAsync(url, "bench-" + i));
            }

            using var http = new HttpClient { BaseAddress = new Uri(url) };
            foreach (var fake in fakes)
            {
                for (var c = 0; c < copies; c++)
                {
                    using var response = await http.PostAsJsonAsync("/api/workloads", new SubmitWorkloadRequest("sleep", ["3600"], 0.01, 16, 3600, null, "never", 0, false,
                        fake.Name, null, null), WorkloadJsonContext.Default.SubmitWorkloadRequest);
                    response.EnsureSuccessStatusCode();
                }
            }

            await Task.WhenAll(fakes.Select(f => f.WaitForCopiesAsync(copies)));
            Console.WriteLine($"{providers} providers x {copies} copies placed and started; measuring {seconds} s");

            var durations = new List<double>();
            using var listener = new MeterListener();
            listener.InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == WorkloadSupervisor.MeterName && instrument.Name == "coinop.workloads.heartbeat.duration")
                {
                    l.EnableMeasurementEvents(instrument);
                }
            };
            listener.SetMeasurementEventCallback<double>((_, value, _, _) =>
            {
                lock (durations)
                {
                    durations.Add(value);
                }
            });
            listener.Start();

            // Warm up, then measure.
            using (var warm = new CancellationTokenSource(TimeSpan.FromSeconds(3)))
            {
                await Task.WhenAll(fakes.Select(f => f.HeartbeatLoopAsync(warm.Token)));
            }

            lock (durations)
            {
                durations.Clear();
            }

            var process = Process.GetCurrentProcess();
            var cpu = process.TotalProcessorTime;
            var wall = Stopwatch.StartNew();
            using var run = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
            var counts = await Task.WhenAll(fakes.Select(f => f.HeartbeatLoopAsync(run.Token)));
            wall.Stop();
            process.Refresh();
            var cpuSeconds = (process.TotalProcessorTime - cpu).TotalSeconds;
            var heartbeats = counts.Sum();
            double[] sorted;
            lock (durations)
            {
                sorted = [.. durations.Order()];
            }

            Console.WriteLine($"{heartbeats} heartbeats of {copies} copies in {wall.Elapsed.TotalSeconds:N1} s: {heartbeats / wall.Elapsed.TotalSeconds:N0}/s, "
                + $"{heartbeats * copies / wall.Elapsed.TotalSeconds:N0} copy renewals/s");
            Console.WriteLine($"supervisor time per heartbeat: mean {sorted.Average():N2} ms, p50 {sorted[sorted.Length / 2]:N2} ms, "
                + $"p99 {sorted[(int)(sorted.Length * 0.99)]:N2} ms ({sorted.Average() * 1000 / copies:N0} µs per copy)");
            Console.WriteLine($"process CPU: {cpuSeconds * 1000 / heartbeats:N2} ms per heartbeat, {cpuSeconds * 1e6 / (heartbeats * (double)copies):N0} µs per copy renewal");
            foreach (var fake in fakes)
            {
                await fake.DisposeAsync();
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>A provider that speaks the real protocol: signed handshake, workload capabilities, and copies it only pretends to run.</summary>
    private sealed class FakeProvider : IAsyncDisposable
    {
        private readonly ClientWebSocket _socket = new();
        private readonly SemaphoreSlim _send = new(1, 1);
        private readonly List<CopyRef> _copies = [];
        private readonly string _incarnation = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
        private readonly CancellationTokenSource _stop = new();
        private TaskCompletionSource _acked = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private TaskCompletionSource _copiesChanged = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private long _seq;

        private FakeProvider(string name) => Name = name;

        public string Name { get; }

        public static async Task<FakeProvider> ConnectAsync(string market, string name)
        {
            var fake = new FakeProvider(name);
            await fake._socket.ConnectAsync(new Uri(market.Replace("http://", "ws://", StringComparison.Ordinal) + "/provider/connect"), CancellationToken.None);
            using var key = Key.Create(SignatureAlgorithm.Ed25519);
            var challenge = (AuthChallenge)(await fake.ReceiveAsync())!;
            var signature = SignatureAlgorithm.Ed25519.Sign(key, ProviderAuth.SigningPayload(challenge.MarketId, Convert.FromBase64String(challenge.Nonce)));
            await fake.SendAsync(new AuthResponse(Convert.ToBase64String(key.PublicKey.Export(KeyBlobFormat.RawPublicKey)), Convert.ToBase64String(signature), "bench", name, null));
            if (await fake.ReceiveAsync() is not AuthOk)
            {
                throw new InvalidOperationException("the market refused the bench provider");
            }

            await fake.SendAsync(new CapabilitiesMessage([], 1, "bench", new WorkloadCapacity("process", 10_000, 100_000_000, 0, 0,
                Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)), Convert.ToBase64String(RandomNumberGenerator.GetBytes(64)), fake._incarnation)));
            _ = fake.ReadLoopAsync();
            _ = fake.ProviderHeartbeatsAsync();
            return fake;
        }

        public async Task WaitForCopiesAsync(int count)
        {
            while (true)
            {
                Task changed;
                lock (_copies)
                {
                    if (_copies.Count >= count)
                    {
                        return;
                    }

                    changed = _copiesChanged.Task;
                }

                await changed.WaitAsync(TimeSpan.FromSeconds(120));
            }
        }

        public async Task<int> HeartbeatLoopAsync(CancellationToken ct)
        {
            var sent = 0;
            while (!ct.IsCancellationRequested)
            {
                CopyRef[] copies;
                lock (_copies)
                {
                    copies = [.. _copies];
                    _acked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                }

                var acked = _acked.Task;
                await SendAsync(new WorkloadHeartbeat(++_seq, _incarnation, copies, []));
                await acked;
                sent++;
            }

            return sent;
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            _socket.Abort();
            _socket.Dispose();
        }

        private async Task ReadLoopAsync()
        {
            try
            {
                while (await ReceiveAsync() is { } message)
                {
                    switch (message)
                    {
                        case WorkloadStart { Role: WorkloadStart.Primary } start:
                            lock (_copies)
                            {
                                _copies.Add(new CopyRef(start.WorkloadId, start.Epoch));
                                _copiesChanged.TrySetResult();
                                _copiesChanged = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                            }

                            break;
                        case WorkloadAck ack when ack.Seq == Interlocked.Read(ref _seq):
                            _acked.TrySetResult();
                            break;
                    }
                }
            }
            catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or ObjectDisposedException)
            {
            }
        }

        private async Task ProviderHeartbeatsAsync()
        {
            try
            {
                while (!_stop.IsCancellationRequested)
                {
                    await Task.Delay(TimeSpan.FromSeconds(4), _stop.Token);
                    await SendAsync(new HeartbeatMessage(LoadFigures.Idle));
                }
            }
            catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or ObjectDisposedException)
            {
            }
        }

        private async Task SendAsync(ProtocolMessage message)
        {
            await _send.WaitAsync();
            try
            {
                await _socket.SendAsync(ProtocolJson.Serialize(message), WebSocketMessageType.Text, true, CancellationToken.None);
            }
            finally
            {
                _send.Release();
            }
        }

        private async Task<ProtocolMessage?> ReceiveAsync()
        {
            var buffer = new byte[1 << 20];
            var length = 0;
            while (true)
            {
                var result = await _socket.ReceiveAsync(buffer.AsMemory(length), _stop.Token);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    return null;
                }

                length += result.Count;
                if (result.EndOfMessage)
                {
                    return ProtocolJson.TryDeserialize(buffer.AsSpan(0, length));
                }
            }
        }
    }
}
