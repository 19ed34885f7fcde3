using System.Diagnostics.Metrics;
using System.Text.Json;
using Coinop.Provider.Hosting;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Coinop.Provider.Status;

/// <summary>
/// Writes the agent's <see cref="AgentStatus"/> to its data directory every <see cref="Interval"/> and once more when it
/// stops (link <c>stopped</c>). A file rather than a socket: <c>coinop provider status</c> reads it with no connection to
/// the agent, and still has the last state after the agent died. Written to a temporary file and renamed, so a reader
/// never sees half of one. Jobs are counted from the agent's own <c>coinop.provider.jobs</c> counter.
/// </summary>
public sealed class AgentStatusWriter : BackgroundService
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(2);

    private readonly ProviderAgent _agent;
    private readonly ProviderOptions _options;
    private readonly RecentErrors _errors;
    private readonly TimeProvider _time;
    private readonly ILogger<AgentStatusWriter> _logger;
    private readonly MeterListener _listener = new();
    private readonly DateTimeOffset _startedAt;
    private readonly int _pid = Environment.ProcessId;
    private long _served;
    private long _failed;
    private long _cancelled;
    private string _state = "starting";
    private DateTimeOffset _since;
    private bool _warned;

    public AgentStatusWriter(ProviderAgent agent, IOptions<ProviderOptions> options, RecentErrors errors, TimeProvider time, IMeterFactory meters,
        ILogger<AgentStatusWriter> logger)
    {
        _agent = agent;
        _options = options.Value;
        _errors = errors;
        _time = time;
        _logger = logger;
        _startedAt = _since = time.GetUtcNow();
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (ReferenceEquals(instrument.Meter.Scope, meters) && instrument.Meter.Name == ProviderMetrics.MeterName && instrument.Name == "coinop.provider.jobs")
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((_, value, tags, _) => Count(value, tags));
        _listener.Start();
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval, _time);
        try
        {
            do
            {
                Write(_agent.Draining ? "draining" : _agent.LinkUp ? "online" : _agent.ProviderId is null ? "starting" : "connecting");
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        Write("stopped"); // registered before the agent, so this runs after the agent drained
    }

    public override void Dispose()
    {
        _listener.Dispose();
        base.Dispose();
    }

    private void Count(long value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        string? outcome = null;
        foreach (var tag in tags)
        {
            if (tag.Key == "outcome")
            {
                outcome = tag.Value as string;
            }
        }

        switch (outcome)
        {
            case "done":
                Interlocked.Add(ref _served, value);
                break;
            case "cancelled":
                Interlocked.Add(ref _cancelled, value);
                break;
            default:
                Interlocked.Add(ref _failed, value);
                break;
        }
    }

    private void Write(string state)
    {
        var now = _time.GetUtcNow();
        if (state != _state)
        {
            _state = state;
            _since = now;
        }

        var catalog = _agent.Catalog;
        var status = new AgentStatus(
            AgentStatus.CurrentVersion,
            _agent.ProviderId,
            _pid,
            _options.MarketUrl,
            _startedAt,
            now,
            new LinkStatus(_state, _since),
            [.. catalog.Offers.Select(o => new OfferStatus(o.Model, o.Backend, o.InputMsatPerMtok / 1000m, o.OutputMsatPerMtok / 1000m))],
            new JobCounts(Interlocked.Read(ref _served), Interlocked.Read(ref _failed), Interlocked.Read(ref _cancelled), _agent.JobsInFlight),
            _errors.Snapshot());
        try
        {
            Directory.CreateDirectory(_options.DataDir);
            var path = AgentStatus.PathIn(_options.DataDir);
            var temp = path + ".tmp";
            File.WriteAllBytes(temp, JsonSerializer.SerializeToUtf8Bytes(status, AgentStatusJson.Default.AgentStatus));
            File.Move(temp, path, overwrite: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            if (!_warned)
            {
                _warned = true; // once: the agent serves on without it
                StatusLog.WriteFailed(_logger, AgentStatus.PathIn(_options.DataDir), ex.Message);
            }
        }
    }
}
