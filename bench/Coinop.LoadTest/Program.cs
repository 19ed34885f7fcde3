using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

// Usage: Coinop.LoadTest --url URL [--label NAME] [--rate 1000 | --sequential [--count N]] [--seconds 20] [--warmup 5]
//        [--model sim-small] [--stream] [--max-tokens 16] [--prompt TEXT] [--pids 123,456] [--header "K: V"]... [--x-cashu-file tokens.txt] [--json out.json]
//        Coinop.LoadTest tokens --market URL --count N --sats A --out tokens.txt   (N tokens of A sat, one per line)
//        Coinop.LoadTest balance --market URL --sats A                             (prints a funded sk- balance key)
// Sends chat completions at a fixed rate (open loop: a slow response never delays the next send, so latency is
// measured from the scheduled send time and queueing shows up instead of hiding) and reports percentiles, errors and
// the CPU the given processes used per request. With --stream it also reports the time to the first `data:` event
// (time to first token) and the gaps between consecutive events as they arrive.
// With --sequential it is a closed loop instead: one request at a time, the next sent as soon as the last finished
// (at most --count requests when given), so no other request is in flight and nothing queues: latency is measured
// from the actual send, and the report's rate is the rate achieved.
if (args is ["tokens" or "balance", ..])
{
    return await PaidSetup.RunAsync(args);
}

var opts = Args.Parse(args);
// One X-Cashu token per request (a token pays once); the run fails loudly if the file runs out.
var tokens = opts.TokenFile is { } tokenFile ? await File.ReadAllLinesAsync(tokenFile) : null;
var nextToken = -1;
var handler = new SocketsHttpHandler
{
    MaxConnectionsPerServer = 2048,
    PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
    AutomaticDecompression = DecompressionMethods.None,
    UseProxy = false,
};
using var http = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(30) };
var body = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new Dictionary<string, object>
{
    ["model"] = opts.Model,
    ["messages"] = new[] { new { role = "user", content = opts.Prompt } },
    ["max_tokens"] = opts.MaxTokens,
    ["stream"] = opts.Stream,
}));
var url = opts.Url.TrimEnd('/') + "/v1/chat/completions";

// Per streamed request: ticks from the scheduled send to the first event, and the gaps between events as read.
var firstEvent = new System.Collections.Concurrent.ConcurrentBag<long>();
var eventGaps = new System.Collections.Concurrent.ConcurrentBag<long>();

async Task<(long Ticks, bool Ok)> OneAsync(long scheduled)
{
    using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new ByteArrayContent(body) };
    request.Content.Headers.ContentType = new("application/json");
    foreach (var (k, v) in opts.Headers)
    {
        request.Headers.TryAddWithoutValidation(k, v);
    }

    if (tokens is not null)
    {
        request.Headers.TryAddWithoutValidation("X-Cashu", tokens[Interlocked.Increment(ref nextToken)]);
    }

    try
    {
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        await using var stream = await response.Content.ReadAsStreamAsync();
        var buffer = new byte[8192];
        int read;
        var events = new EventClock(scheduled);
        while ((read = await stream.ReadAsync(buffer)) > 0)
        {
            if (opts.Stream)
            {
                events.Saw(buffer.AsSpan(0, read), Stopwatch.GetTimestamp());
            }
        }

        if (opts.Stream && events.First is { } first && response.IsSuccessStatusCode)
        {
            firstEvent.Add(first);
            foreach (var gap in events.Gaps)
            {
                eventGaps.Add(gap);
            }
        }

        return (Stopwatch.GetTimestamp() - scheduled, response.IsSuccessStatusCode);
    }
    catch (Exception)
    {
        return (Stopwatch.GetTimestamp() - scheduled, false);
    }
}

async Task<List<(long Ticks, bool Ok)>> RunAsync(double seconds)
{
    if (opts.Sequential)
    {
        return await RunSequentialAsync(seconds);
    }

    var count = (int)(opts.Rate * seconds);
    var interval = Stopwatch.Frequency / opts.Rate;
    var tasks = new Task<(long, bool)>[count];
    // The sends are paced by one dedicated thread that sleeps until each send is due (a spin-wait would take a whole
    // core from the processes under test on a 2-core machine and distort both their latency and their CPU figures).
    var pacer = new Thread(() =>
    {
        Pacing.Prepare();
        var start = Stopwatch.GetTimestamp();
        for (var i = 0; i < count; i++)
        {
            var due = start + (long)(i * interval);
            Pacing.SleepUntil(due);
            tasks[i] = Task.Run(() => OneAsync(due));
        }
    })
    {
        IsBackground = true,
        Name = "pacer",
    };
    pacer.Start();
    pacer.Join();
    return [.. await Task.WhenAll(tasks)];
}

// Closed loop: the next request leaves when the last one has been read to its end.
async Task<List<(long Ticks, bool Ok)>> RunSequentialAsync(double seconds)
{
    var results = new List<(long, bool)>();
    var end = Stopwatch.GetTimestamp() + (long)(seconds * Stopwatch.Frequency);
    while (Stopwatch.GetTimestamp() < end && (opts.Count <= 0 || results.Count < opts.Count))
    {
        results.Add(await OneAsync(Stopwatch.GetTimestamp()));
    }

    return results;
}

await RunAsync(opts.Warmup);
firstEvent.Clear();
eventGaps.Clear();
var self = Environment.ProcessId;
var cpuBefore = opts.Pids.Append(self).ToDictionary(p => p, ProcessCpu.Seconds);
var wall = Stopwatch.StartNew();
var results = await RunAsync(opts.Seconds);
wall.Stop();
var cpuAfter = opts.Pids.Append(self).ToDictionary(p => p, ProcessCpu.Seconds);
double CpuMsPerRequest(int pid) => Math.Round((cpuAfter[pid] - cpuBefore[pid]) * 1000 / Math.Max(1, results.Count), 4);

var ok = results.Where(r => r.Ok).Select(r => r.Ticks * 1000.0 / Stopwatch.Frequency).Order().ToArray();
double P(double q) => ok.Length == 0 ? double.NaN : ok[Math.Min(ok.Length - 1, (int)Math.Ceiling(q * ok.Length) - 1)];
var report = new Dictionary<string, object?>
{
    ["label"] = opts.Label,
    ["url"] = opts.Url,
    ["mode"] = opts.Sequential ? "sequential" : "open",
    ["rate"] = opts.Sequential ? Math.Round(results.Count / wall.Elapsed.TotalSeconds, 1) : opts.Rate,
    ["seconds"] = opts.Seconds,
    ["requests"] = results.Count,
    ["errors"] = results.Count(r => !r.Ok),
    ["achieved_rps"] = Math.Round(results.Count / wall.Elapsed.TotalSeconds, 1),
    ["p50_ms"] = Math.Round(P(0.50), 3),
    ["p90_ms"] = Math.Round(P(0.90), 3),
    ["p99_ms"] = Math.Round(P(0.99), 3),
    ["max_ms"] = Math.Round(ok.Length == 0 ? double.NaN : ok[^1], 3),
    ["ttft_p50_ms"] = Percentile(firstEvent, 0.50),
    ["ttft_p99_ms"] = Percentile(firstEvent, 0.99),
    ["event_gap_p50_ms"] = Percentile(eventGaps, 0.50),
    ["event_gap_p99_ms"] = Percentile(eventGaps, 0.99),
    ["event_gap_max_ms"] = Percentile(eventGaps, 1.0),
    ["cpu_ms_per_request"] = opts.Pids.ToDictionary(p => p.ToString(CultureInfo.InvariantCulture), CpuMsPerRequest),
    ["load_generator_cpu_ms_per_request"] = CpuMsPerRequest(self),
    ["load_average"] = File.ReadAllText("/proc/loadavg").Split(' ')[0],
};
var json = JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true });
Console.WriteLine(json);
if (opts.JsonOut is { } path)
{
    await File.WriteAllTextAsync(path, json);
}

static double? Percentile(IEnumerable<long> ticks, double q)
{
    var sorted = ticks.Select(t => t * 1000.0 / Stopwatch.Frequency).Order().ToArray();
    return sorted.Length == 0 ? null : Math.Round(sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(q * sorted.Length) - 1)], 3);
}

return report["errors"] is int e && e > results.Count / 100 ? 1 : 0;

internal sealed record Args(string Url, string Label, double Rate, bool Sequential, int Count, double Seconds, double Warmup, string Model,
    bool Stream, int MaxTokens, string Prompt, int[] Pids, List<(string, string)> Headers, string? TokenFile, string? JsonOut)
{
    public static Args Parse(string[] args)
    {
        string Get(string name, string fallback)
        {
            var i = Array.IndexOf(args, name);
            return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
        }

        var headers = new List<(string, string)>();
        for (var i = 0; i < args.Length - 1; i++)
        {
            if (args[i] == "--header" && args[i + 1].Split(':', 2) is [var k, var v])
            {
                headers.Add((k.Trim(), v.Trim()));
            }
        }

        var inv = CultureInfo.InvariantCulture;
        return new Args(
            Get("--url", "http://127.0.0.1:3338"),
            Get("--label", "run"),
            double.Parse(Get("--rate", "1000"), inv),
            args.Contains("--sequential"),
            int.Parse(Get("--count", "0"), inv),
            double.Parse(Get("--seconds", "20"), inv),
            double.Parse(Get("--warmup", "5"), inv),
            Get("--model", "sim-small"),
            args.Contains("--stream"),
            int.Parse(Get("--max-tokens", "16"), inv),
            Get("--prompt", "Say something short."),
            [.. Get("--pids", "").Split(',', StringSplitOptions.RemoveEmptyEntries).Select(p => int.Parse(p, inv))],
            headers,
            Get("--x-cashu-file", "") is { Length: > 0 } f ? f : null,
            Get("--json", "") is { Length: > 0 } j ? j : null);
    }
}

/// <summary>Notes when each server-sent event (a line starting `data:`) arrives; events read together share a time.</summary>
internal sealed class EventClock(long scheduled)
{
    private bool _lineStart = true;
    private int _matched; // how much of "data:" the current line has matched so far
    private long _last;

    public long? First { get; private set; }

    public List<long> Gaps { get; } = [];

    public void Saw(ReadOnlySpan<byte> bytes, long now)
    {
        foreach (var b in bytes)
        {
            if (b == (byte)'\n')
            {
                (_lineStart, _matched) = (true, 0);
                continue;
            }

            if (!_lineStart || _matched == 5)
            {
                continue;
            }

            if (b != "data:"u8[_matched])
            {
                _lineStart = false;
                continue;
            }

            if (++_matched < 5)
            {
                continue;
            }

            if (First is null)
            {
                First = now - scheduled;
            }
            else
            {
                Gaps.Add(now - _last);
            }

            _last = now;
        }
    }
}

internal static class ProcessCpu
{
    // utime + stime from /proc/<pid>/stat, in seconds (clock ticks are 100 Hz on Linux).
    public static double Seconds(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / 100.0;
    }
}

internal static partial class Pacing
{
    private const int ClockMonotonic = 1;
    private const int TimerAbsolute = 1;
    private const int SetTimerSlack = 29;

    /// <summary>Asks the kernel to wake this thread within a microsecond of its deadline (the default slack is 50 µs).</summary>
    public static void Prepare() => _ = Prctl(SetTimerSlack, 1000, 0, 0, 0);

    /// <summary>Sleeps until the <see cref="Stopwatch"/> timestamp <paramref name="due"/> (CLOCK_MONOTONIC, as Stopwatch on Linux).</summary>
    public static void SleepUntil(long due)
    {
        if (Stopwatch.GetTimestamp() >= due)
        {
            return;
        }

        var ns = (long)(due * (1e9 / Stopwatch.Frequency));
        var at = new Timespec { Seconds = ns / 1_000_000_000, Nanoseconds = ns % 1_000_000_000 };
        while (ClockNanosleep(ClockMonotonic, TimerAbsolute, ref at, IntPtr.Zero) == 4)
        {
            // EINTR: sleep again until the deadline.
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc", EntryPoint = "clock_nanosleep")]
    private static partial int ClockNanosleep(int clock, int flags, ref Timespec request, IntPtr remaining);

    [LibraryImport("libc", EntryPoint = "prctl")]
    private static partial int Prctl(int option, ulong arg2, ulong arg3, ulong arg4, ulong arg5);
}
