using Coinop.Core.Protocol;

namespace Coinop.Provider.Load;

/// <summary>
/// The provider's real load for heartbeats: jobs in flight, jobs still waiting for their backend's first byte
/// (queue depth), and over the jobs finished in a recent window the p50/p95 time to first byte, output tokens
/// per second and the share that failed.
/// </summary>
public sealed class LoadTracker(TimeProvider time, TimeSpan? window = null, int capacity = 1024)
{
    private readonly TimeSpan _window = window ?? TimeSpan.FromSeconds(60);
    private readonly Outcome[] _recent = new Outcome[capacity];
    private readonly Lock _gate = new();
    private int _next;
    private int _count;
    private int _inFlight;
    private int _waiting;

    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>A job was accepted; it waits for its first output byte.</summary>
    public void Started()
    {
        Interlocked.Increment(ref _inFlight);
        Interlocked.Increment(ref _waiting);
    }

    /// <summary>The job's backend produced its first byte.</summary>
    public void FirstByte() => Interlocked.Decrement(ref _waiting);

    /// <summary>
    /// The job ended. <paramref name="firstByte"/> is null when no output came; <paramref name="failed"/> counts it
    /// against the error rate (cancellations and refused requests are not the provider's failures: pass null).
    /// </summary>
    public void Finished(TimeSpan? firstByte, TimeSpan duration, long outputTokens, bool? failed)
    {
        if (firstByte is null)
        {
            Interlocked.Decrement(ref _waiting);
        }

        Interlocked.Decrement(ref _inFlight);
        if (failed is null)
        {
            return;
        }

        lock (_gate)
        {
            _recent[_next] = new Outcome(time.GetTimestamp(), firstByte ?? duration, duration, outputTokens, failed.Value, firstByte is not null);
            _next = (_next + 1) % _recent.Length;
            _count = Math.Min(_count + 1, _recent.Length);
        }
    }

    public LoadFigures Snapshot()
    {
        var latencies = new List<double>();
        long tokens = 0, failures = 0, total = 0;
        double seconds = 0;
        lock (_gate)
        {
            for (var i = 0; i < _count; i++)
            {
                var o = _recent[i];
                if (time.GetElapsedTime(o.At) > _window)
                {
                    continue;
                }

                total++;
                if (o.Failed)
                {
                    failures++;
                    continue;
                }

                if (o.HadOutput)
                {
                    latencies.Add(o.FirstByte.TotalMilliseconds);
                }

                tokens += o.OutputTokens;
                seconds += o.Duration.TotalSeconds;
            }
        }

        latencies.Sort();
        return new LoadFigures(
            InFlight,
            Math.Max(0, Volatile.Read(ref _waiting)),
            Percentile(latencies, 0.50),
            Percentile(latencies, 0.95),
            seconds > 0 ? Math.Round(tokens / seconds, 2) : 0,
            total > 0 ? Math.Round((double)failures / total, 4) : 0);
    }

    /// <summary>Nearest-rank percentile.</summary>
    private static double Percentile(List<double> sorted, double p) =>
        sorted.Count == 0 ? 0 : Math.Round(sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Count) - 1, 0, sorted.Count - 1)], 2);

    private readonly record struct Outcome(long At, TimeSpan FirstByte, TimeSpan Duration, long OutputTokens, bool Failed, bool HadOutput);
}
