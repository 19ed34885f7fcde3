using System.Diagnostics.Metrics;

namespace Coinop.Market.Hosting;

/// <summary>The store's metrics (<c>Meter "Coinop.Storage"</c>): the background WAL checkpoints of a SQLite store.</summary>
public sealed class StorageMetrics
{
    public const string MeterName = "Coinop.Storage";

    private static readonly InstrumentAdvice<double> Milliseconds = new() { HistogramBucketBoundaries = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 1000] };

    private readonly Counter<long> _checkpoints;
    private readonly Counter<long> _pages;
    private readonly Histogram<double> _duration;

    public StorageMetrics(IMeterFactory meters)
    {
        var meter = meters.Create(MeterName);
        _checkpoints = meter.CreateCounter<long>("coinop.storage.wal.checkpoints", description: "Background WAL checkpoints, by outcome (complete, partial)");
        _pages = meter.CreateCounter<long>("coinop.storage.wal.checkpointed", unit: "{page}", description: "WAL pages copied into the database file by background checkpoints");
        _duration = meter.CreateHistogram("coinop.storage.wal.checkpoint.duration", "ms", "Time of a background WAL checkpoint (copy and fsyncs)", advice: Milliseconds);
    }

    public void Checkpointed(bool complete, long pages, TimeSpan took)
    {
        var outcome = new KeyValuePair<string, object?>("outcome", complete ? "complete" : "partial");
        _checkpoints.Add(1, outcome);
        _pages.Add(Math.Max(0, pages));
        _duration.Record(took.TotalMilliseconds, outcome);
    }
}
