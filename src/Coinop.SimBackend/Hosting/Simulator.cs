using System.Text.Json;

namespace Coinop.SimBackend.Hosting;

/// <summary>The simulator's shared state: its models (names pre-encoded for JSON), pacing, clock and counters.</summary>
public sealed class Simulator
{
    public const string OwnedBy = "coinop-simulator";

    internal static ReadOnlySpan<byte> FingerprintUtf8 => "fp_coinop_simulator"u8;

    private const int RecordedRequests = 64;
    private readonly Dictionary<string, byte[]> _models;
    private readonly HashSet<string> _vision;
    private readonly Queue<string> _recent = new();
    private long _requests;
    private int _active;

    public Simulator(SimBackendOptions options, TimeProvider time)
    {
        Options = options;
        Time = time;
        _models = options.Models.Concat(options.VisionModels).ToDictionary(m => m, m => JsonEncodedText.Encode(m).EncodedUtf8Bytes.ToArray(), StringComparer.Ordinal);
        _vision = new HashSet<string>(options.VisionModels, StringComparer.Ordinal);
        FirstTokenDelay = options.Latency;
        TokenInterval = options.TokensPerSecond > 0 ? TimeSpan.FromSeconds(1 / options.TokensPerSecond) : TimeSpan.Zero;
    }

    public SimBackendOptions Options { get; }

    public TimeProvider Time { get; }

    public TimeSpan FirstTokenDelay { get; }

    public TimeSpan TokenInterval { get; }

    public IEnumerable<string> ModelNames => Options.Models.Concat(Options.VisionModels);

    /// <summary>The model takes images.</summary>
    public bool IsVision(string name) => _vision.Contains(name);

    /// <summary>The bodies of the last inference requests, oldest first (kept only with <see cref="SimBackendOptions.RecordRequests"/>).</summary>
    public IReadOnlyList<string> RecentRequests()
    {
        lock (_recent)
        {
            return [.. _recent];
        }
    }

    internal void Record(JsonElement body)
    {
        if (!Options.RecordRequests)
        {
            return;
        }

        var text = body.GetRawText();
        lock (_recent)
        {
            if (_recent.Count == RecordedRequests)
            {
                _recent.Dequeue();
            }

            _recent.Enqueue(text);
        }
    }

    /// <summary>Inference requests received so far.</summary>
    public long Requests => Interlocked.Read(ref _requests);

    /// <summary>Inference requests being answered now (tests await 0 after a cancel).</summary>
    public int Active => Volatile.Read(ref _active);

    public bool TryGetModel(string name, out byte[] encodedName) => _models.TryGetValue(name, out encodedName!);

    internal Tracking Track()
    {
        var arrived = Time.GetTimestamp(); // before the request shows as active: a test's clock moves only after that
        Interlocked.Increment(ref _requests);
        Interlocked.Increment(ref _active);
        return new Tracking(this, arrived);
    }

    /// <summary>A request being served; <see cref="Arrived"/> is when its latency and pacing count from.</summary>
    internal readonly struct Tracking(Simulator simulator, long arrived) : IDisposable
    {
        public long Arrived => arrived;

        public void Dispose() => Interlocked.Decrement(ref simulator._active);
    }
}
