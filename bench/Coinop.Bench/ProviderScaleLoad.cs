using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text.RegularExpressions;
using Coinop.Core.Identity;
using Coinop.Core.Protocol;
using NSec.Cryptography;

namespace Coinop.Bench;

/// <summary>
/// Many idle providers on one market node (a separate process, given by URL and pid): each connects over its own WebSocket
/// (spread over several 127.0.0.x source addresses), signs the real handshake with its own Ed25519 key, sends its
/// capabilities (one model) and then heartbeats every TTL/2 as the agent does, taking the next TTL from each ack.
/// Reported: the market's RSS and GC heap before and after, per provider; the market's CPU over a window of idle
/// heartbeats; and the latency of <c>/v1/models</c> and <c>/api/providers</c> with every provider linked.
/// </summary>
public static partial class ProviderScaleLoad
{
    public static async Task RunAsync(string market, int pid, int count, int idleSeconds, int sources)
    {
        using var http = new HttpClient { BaseAddress = new Uri(market), Timeout = TimeSpan.FromMinutes(2) };
        await SettleAsync();
        var before = await MemoryAsync(http, pid);
        Console.WriteLine($"market before: RSS {before.Rss / 1048576.0:N1} MiB, GC heap {before.Heap / 1048576.0:N1} MiB");

        // What the market's own periodic work costs with no provider linked: the floor under the idle figure below.
        var empty = Stopwatch.StartNew();
        var emptyCpu = CpuSeconds(pid);
        await Task.Delay(TimeSpan.FromSeconds(Math.Min(idleSeconds, 20)));
        emptyCpu = CpuSeconds(pid) - emptyCpu;
        Console.WriteLine($"no provider {empty.Elapsed.TotalSeconds:N0} s: market CPU {emptyCpu:N2} s = {emptyCpu * 100 / empty.Elapsed.TotalSeconds:N2}% of one core");

        var providers = new ScaleProvider[count];
        var connect = Stopwatch.StartNew();
        var failures = 0;
        using (var gate = new SemaphoreSlim(64))
        {
            await Task.WhenAll(Enumerable.Range(0, count).Select(async i =>
            {
                await gate.WaitAsync();
                try
                {
                    providers[i] = await ScaleProvider.ConnectAsync(market, $"scale-{i:D5}", IPAddress.Parse($"127.0.0.{1 + (i % sources)}"));
                }
                catch (Exception ex) when (ex is WebSocketException or InvalidOperationException or HttpRequestException or IOException)
                {
                    Interlocked.Increment(ref failures);
                    if (failures <= 3)
                    {
                        Console.WriteLine($"provider {i} failed to connect: {ex.Message}");
                    }
                }
                finally
                {
                    gate.Release();
                }
            }));
        }

        var linked = providers.Count(p => p is not null);
        Console.WriteLine($"{linked} providers linked in {connect.Elapsed.TotalSeconds:N1} s ({failures} failed)");
        if (linked == 0)
        {
            return;
        }

        await WaitOnlineAsync(http, linked);
        await SettleAsync();
        var after = await MemoryAsync(http, pid);
        Console.WriteLine($"market after: RSS {after.Rss / 1048576.0:N1} MiB, GC heap {after.Heap / 1048576.0:N1} MiB");
        Console.WriteLine($"memory per idle provider: RSS {(after.Rss - before.Rss) / 1024.0 / linked:N1} KB, GC heap {(after.Heap - before.Heap) / 1024.0 / linked:N1} KB");

        // The connection storm's garbage and JIT settle first: the window measures steady idle heartbeats.
        await Task.Delay(TimeSpan.FromSeconds(30));
        var beatsBefore = providers.Sum(p => p?.Heartbeats ?? 0);
        var cpuBefore = CpuSeconds(pid);
        var idle = Stopwatch.StartNew();
        await Task.Delay(TimeSpan.FromSeconds(idleSeconds));
        var cpu = CpuSeconds(pid) - cpuBefore;
        var beats = providers.Sum(p => p?.Heartbeats ?? 0) - beatsBefore;
        var ttl = providers.Where(p => p is not null).Average(p => p.TtlMs) / 1000;
        Console.WriteLine($"idle {idle.Elapsed.TotalSeconds:N0} s: {beats} heartbeats ({beats / idle.Elapsed.TotalSeconds:N1}/s, mean TTL {ttl:N0} s), "
            + $"market CPU {cpu:N2} s = {cpu * 100 / idle.Elapsed.TotalSeconds:N2}% of one core"
            + (beats > 0 ? $", {cpu * 1e6 / beats:N0} µs per heartbeat (upper bound: all of the market's idle work)" : ""));
        Console.WriteLine($"still linked at the end: {providers.Count(p => p is { Closed: false })} of {linked}");

        await LatencyAsync(http, "/v1/models", 200);
        await LatencyAsync(http, "/api/providers", 20);
        await LatencyAsync(http, "/api/providers?limit=100", 200);
        await LatencyAsync(http, "/api/market/overview", 20);

        foreach (var p in providers)
        {
            p?.Dispose();
        }
    }

    private static async Task LatencyAsync(HttpClient http, string path, int requests)
    {
        var times = new List<double>(requests);
        long bytes = 0;
        for (var i = 0; i < requests + 3; i++)
        {
            var sw = Stopwatch.StartNew();
            var body = await http.GetByteArrayAsync(path);
            if (i >= 3)
            {
                times.Add(sw.Elapsed.TotalMilliseconds);
                bytes = body.Length;
            }
        }

        times.Sort();
        Console.WriteLine($"GET {path}: p50 {times[times.Count / 2]:N2} ms, p99 {times[Math.Min(times.Count - 1, (int)(times.Count * 0.99))]:N2} ms ({bytes / 1024.0:N0} KB, {requests} requests)");
    }

    private static async Task WaitOnlineAsync(HttpClient http, int expected)
    {
        for (var i = 0; i < 600; i++)
        {
            using var overview = System.Text.Json.JsonDocument.Parse(await http.GetStringAsync("/api/market/overview"));
            var online = overview.RootElement.GetProperty("models").EnumerateArray().Sum(m => m.GetProperty("providers").GetInt32());
            if (online >= expected)
            {
                return;
            }

            await Task.Delay(500);
        }
    }

    /// <summary>Lets the market's GC settle: a few seconds of quiet, so "after" is comparable with "before".</summary>
    private static Task SettleAsync() => Task.Delay(TimeSpan.FromSeconds(5));

    private static async Task<(long Rss, long Heap)> MemoryAsync(HttpClient http, int pid)
    {
        var rss = File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        var kb = long.Parse(rss.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
        var metrics = await http.GetStringAsync("/metrics");
        var heap = HeapGauge().Matches(metrics).Sum(m => double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)); // one series per generation
        return (kb * 1024, (long)heap);
    }

    private static double CpuSeconds(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / 100.0;
    }

    [GeneratedRegex(@"^dotnet_gc_last_collection_heap_size_bytes(?:\{[^}]*\})?\s+(\S+)", RegexOptions.Multiline)]
    private static partial Regex HeapGauge();

    /// <summary>
    /// The agent's WebSocket keep-alive (one unsolicited pong per interval, as MarketSession sets it: 120 s; it was
    /// ClientWebSocket's default 30 s before); KEEPALIVE_S overrides it to measure another.
    /// </summary>
    private static readonly TimeSpan KeepAlive = Environment.GetEnvironmentVariable("KEEPALIVE_S") is { Length: > 0 } s
        ? TimeSpan.FromSeconds(double.Parse(s, CultureInfo.InvariantCulture))
        : TimeSpan.FromSeconds(120);

    /// <summary>One idle provider: the real handshake and capabilities, then heartbeats every TTL/2 until disposed.</summary>
    private sealed class ScaleProvider : IDisposable
    {
        private readonly ClientWebSocket _socket = new() { Options = { KeepAliveInterval = KeepAlive } };
        private readonly CancellationTokenSource _stop = new();
        private readonly byte[] _buffer = new byte[4096];
        private int _heartbeats;

        public int Heartbeats => Volatile.Read(ref _heartbeats);

        public int TtlMs { get; private set; }

        public bool Closed { get; private set; }

        public static async Task<ScaleProvider> ConnectAsync(string market, string name, IPAddress source)
        {
            var provider = new ScaleProvider();
            var handler = new SocketsHttpHandler
            {
                ConnectCallback = async (context, ct) =>
                {
                    var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                    try
                    {
                        socket.Bind(new IPEndPoint(source, 0));
                        await socket.ConnectAsync(context.DnsEndPoint, ct);
                        return new NetworkStream(socket, ownsSocket: true);
                    }
                    catch
                    {
                        socket.Dispose();
                        throw;
                    }
                },
            };
            using var invoker = new HttpMessageInvoker(handler);
            await provider._socket.ConnectAsync(new Uri(market.Replace("http://", "ws://", StringComparison.Ordinal) + "/provider/connect"), invoker, CancellationToken.None);
            using var key = Key.Create(SignatureAlgorithm.Ed25519);
            var challenge = await provider.ReceiveAsync() as AuthChallenge ?? throw new InvalidOperationException("no challenge");
            var signature = SignatureAlgorithm.Ed25519.Sign(key, ProviderAuth.SigningPayload(challenge.MarketId, Convert.FromBase64String(challenge.Nonce)));
            await provider.SendAsync(new AuthResponse(Convert.ToBase64String(key.PublicKey.Export(KeyBlobFormat.RawPublicKey)), Convert.ToBase64String(signature), "bench", name, null));
            var ok = await provider.ReceiveAsync() as AuthOk ?? throw new InvalidOperationException("the market refused the provider");
            provider.TtlMs = ok.HeartbeatTtlMs;
            await provider.SendAsync(new CapabilitiesMessage([new ModelOffer("scale-model", "openai", 1000, 2000, 8192, 4)], 4, "bench"));
            _ = provider.RunAsync();
            return provider;
        }

        public void Dispose()
        {
            _stop.Cancel();
            _socket.Abort();
            _socket.Dispose();
        }

        private async Task RunAsync()
        {
            var reading = ReadLoopAsync();
            try
            {
                while (!_stop.IsCancellationRequested)
                {
                    // The agent's schedule: every TTL/2, with a little jitter so heartbeats do not march in step.
                    await Task.Delay(TimeSpan.FromMilliseconds(TtlMs / 2.0 * (0.9 + Random.Shared.NextDouble() * 0.1)), _stop.Token);
                    await SendAsync(new HeartbeatMessage(LoadFigures.Idle));
                    Interlocked.Increment(ref _heartbeats);
                }
            }
            catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or ObjectDisposedException)
            {
            }

            await reading;
        }

        private async Task ReadLoopAsync()
        {
            try
            {
                while (await ReceiveAsync() is { } message)
                {
                    if (message is HeartbeatAck { NextTtlMs: > 0 } ack)
                    {
                        TtlMs = ack.NextTtlMs;
                    }
                }
            }
            catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or ObjectDisposedException)
            {
            }

            Closed = true;
        }

        private Task SendAsync(ProtocolMessage message) =>
            _socket.SendAsync(ProtocolJson.Serialize(message), WebSocketMessageType.Text, true, _stop.Token);

        private async Task<ProtocolMessage?> ReceiveAsync()
        {
            var length = 0;
            var buffer = _buffer;
            while (true)
            {
                if (length == buffer.Length)
                {
                    Array.Resize(ref buffer, buffer.Length * 2);
                }

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
