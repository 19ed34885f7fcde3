using System.Text.Json;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Coinop.Market.Web;

/// <summary>One published overview: its JSON and a version that grows with every change.</summary>
public sealed record PulseSnapshot(long Version, byte[] Json);

/// <summary>
/// The public page's live feed. While anyone listens it rebuilds the overview every second (providers from memory, the
/// throughput chart from the store every few seconds) and publishes it when it changed, so a provider that joins, leaves
/// or gets busy shows within a second. With no listener it does nothing. Listeners are counted and capped: each holds a
/// connection open.
/// </summary>
public sealed class MarketPulse(MarketOverview overview, TimeProvider time, ILogger<MarketPulse> logger) : BackgroundService
{
    public const int MaxListeners = 1000;
    public static readonly TimeSpan Tick = TimeSpan.FromSeconds(1);
    public static readonly TimeSpan ThroughputEvery = TimeSpan.FromSeconds(5);

    private readonly Lock _gate = new();
    private int _listeners;
    private PulseSnapshot _current = new(0, []);
    private byte[] _compared = [];
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource _listened = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public int Listeners => Volatile.Read(ref _listeners);

    /// <summary>Counts a listener in; false when there are already <see cref="MaxListeners"/>.</summary>
    public bool TryListen()
    {
        lock (_gate)
        {
            if (_listeners >= MaxListeners)
            {
                return false;
            }

            _listeners++;
            _listened.TrySetResult();
            return true;
        }
    }

    public void StopListening()
    {
        lock (_gate)
        {
            if (--_listeners == 0)
            {
                _listened = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }
        }
    }

    /// <summary>The first snapshot newer than <paramref name="seen"/>, or the current one when none came within <paramref name="wait"/>.</summary>
    public async Task<PulseSnapshot> NextAsync(long seen, TimeSpan wait, CancellationToken cancellationToken)
    {
        Task changed;
        lock (_gate)
        {
            if (_current.Version > seen)
            {
                return _current;
            }

            changed = _changed.Task;
        }

        try
        {
            await changed.WaitAsync(wait, time, cancellationToken);
        }
        catch (TimeoutException)
        {
        }

        lock (_gate)
        {
            return _current;
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var throughput = new ThroughputView((int)MarketOverview.ThroughputBucket.TotalSeconds, []);
        var throughputAt = DateTimeOffset.MinValue;
        while (!stoppingToken.IsCancellationRequested)
        {
            Task listened;
            lock (_gate)
            {
                listened = _listened.Task;
            }

            try
            {
                await listened.WaitAsync(stoppingToken);
                if (time.GetUtcNow() - throughputAt >= ThroughputEvery)
                {
                    throughput = await overview.ThroughputAsync(stoppingToken);
                    throughputAt = time.GetUtcNow();
                }

                Publish(overview.Build(throughput));
                await Task.Delay(Tick, time, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                WebLog.PulseFailed(logger, ex);
                await Task.Delay(Tick, time, stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
    }

    private void Publish(OverviewView view)
    {
        // The time of the snapshot changes every tick; what matters is whether anything else did.
        var compared = JsonSerializer.SerializeToUtf8Bytes(view with { At = DateTimeOffset.UnixEpoch }, WebJsonContext.Default.OverviewView);
        if (compared.AsSpan().SequenceEqual(_compared))
        {
            return;
        }

        _compared = compared;
        var json = JsonSerializer.SerializeToUtf8Bytes(view, WebJsonContext.Default.OverviewView);
        lock (_gate)
        {
            _current = new PulseSnapshot(_current.Version + 1, json);
            _changed.TrySetResult();
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
    }
}
