using System.Threading.Channels;
using Coinop.Provider.Workloads.Bridge;
using Docker.DotNet;
using Docker.DotNet.Models;

namespace Coinop.Provider.Workloads.Sandboxes;

/// <summary>A copy running as a container.</summary>
internal sealed class DockerCopy : IRunningCopy
{
    private readonly DockerClient _client;
    private readonly string _id;
    private readonly MultiplexedStream _stream;
    private readonly CopyPort _port;
    private readonly TimeProvider _time;
    private readonly long _start;
    private readonly Channel<OutputChunk> _output = Channel.CreateBounded<OutputChunk>(256);
    private readonly TaskCompletionSource<CopyExit> _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _gate = new();
    private double _cpuSeconds;
    private double _memoryMib;
    private double _peakMib;
    private double _memoryMibSeconds;
    private long _lastSample;
    private long? _end;
    private volatile bool _stopRequested;

    private DockerCopy(DockerClient client, string id, int pid, MultiplexedStream stream, CopyPort port, TimeProvider time)
    {
        _client = client;
        _id = id;
        Pid = pid;
        _stream = stream;
        _port = port;
        _time = time;
        _start = _lastSample = time.GetTimestamp();
    }

    public int Pid { get; }

    public ChannelReader<OutputChunk> Output => _output.Reader;

    public Task<CopyExit> Exited => _exited.Task;

    public static DockerCopy Run(DockerClient client, string id, int pid, MultiplexedStream stream, CopyPort port, TimeProvider time, TimeSpan interval)
    {
        var copy = new DockerCopy(client, id, pid, stream, port, time);
        var pump = copy.PumpAsync();
        _ = copy.SampleLoopAsync(interval);
        _ = copy.WatchAsync(pump);
        return copy;
    }

    public IReadOnlyList<int> LivePids() => _exited.Task.IsCompleted ? [] : [Pid];

    public UsageSnapshot Usage()
    {
        lock (_gate)
        {
            var now = _end ?? _time.GetTimestamp();
            var pending = _end is null ? _memoryMib * _time.GetElapsedTime(_lastSample, now).TotalSeconds : 0;
            return new UsageSnapshot(_cpuSeconds, _memoryMibSeconds + pending, _time.GetElapsedTime(_start, now).TotalSeconds, _memoryMib, _peakMib);
        }
    }

    public ValueTask<Stream> ConnectToPortAsync(CancellationToken cancellationToken) => _port.ConnectAsync(_exited.Task, cancellationToken);

    public async Task<CopyExit> StopAsync(TimeSpan grace, CancellationToken cancellationToken)
    {
        _stopRequested = true;
        try
        {
            await _client.Containers.StopContainerAsync(_id, new ContainerStopParameters { WaitBeforeKillSeconds = (uint)Math.Ceiling(grace.TotalSeconds) }, cancellationToken).ConfigureAwait(false);
        }
        catch (DockerApiException)
        {
            // Already stopped.
        }

        return await _exited.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_exited.Task.IsCompleted)
        {
            await StopAsync(TimeSpan.Zero, CancellationToken.None).ConfigureAwait(false);
        }

        _stream.Dispose();
        _port.Dispose();
        _stop.Dispose();
    }

    private async Task PumpAsync()
    {
        var buffer = new byte[16 * 1024];
        try
        {
            while (true)
            {
                var read = await _stream.ReadOutputAsync(buffer, 0, buffer.Length, CancellationToken.None).ConfigureAwait(false);
                if (read.EOF)
                {
                    return;
                }

                var which = read.Target == MultiplexedStream.TargetStream.StandardError ? OutputStream.Stderr : OutputStream.Stdout;
                await _output.Writer.WriteAsync(new OutputChunk(which, buffer.AsMemory(0, read.Count).ToArray())).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // The stream broke (daemon restarted, connection lost): the output ends here; WatchAsync ends the copy.
        }
    }

    private async Task SampleLoopAsync(TimeSpan interval)
    {
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                await SampleAsync().ConfigureAwait(false);
                await Task.Delay(interval, _time, _stop.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task SampleAsync()
    {
        ContainerStatsResponse? stats = null;
        try
        {
            await _client.Containers.GetContainerStatsAsync(_id, new ContainerStatsParameters { Stream = false },
                new Progress<ContainerStatsResponse>(s => stats = s), _stop.Token).ConfigureAwait(false);
        }
        catch (DockerApiException)
        {
            return;
        }

        if (stats is null)
        {
            return;
        }

        lock (_gate)
        {
            var now = _time.GetTimestamp();
            _memoryMibSeconds += _memoryMib * _time.GetElapsedTime(_lastSample, now).TotalSeconds;
            _lastSample = now;
            _memoryMib = stats.MemoryStats.Usage / (1024.0 * 1024.0);
            _peakMib = Math.Max(_peakMib, _memoryMib);
            _cpuSeconds = Math.Max(_cpuSeconds, stats.CPUStats.CPUUsage.TotalUsage / 1e9);
        }
    }

    private async Task WatchAsync(Task pump)
    {
        // Whatever happens to the daemon or its connection, the copy ends: a copy that never reports its exit
        // would hold its capacity for ever and make every drain wait for its timeout.
        var (code, oom) = (-1, false); // unknown unless the daemon tells
        try
        {
            var wait = await _client.Containers.WaitContainerAsync(_id).ConfigureAwait(false);
            await pump.ConfigureAwait(false);
            var inspect = await _client.Containers.InspectContainerAsync(_id).ConfigureAwait(false);
            (code, oom) = ((int)wait.StatusCode, inspect.State.OOMKilled);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // The daemon or the connection failed: the copy is reported ended with an unknown exit code.
        }
        finally
        {
            await _stop.CancelAsync().ConfigureAwait(false);
            lock (_gate)
            {
                var now = _time.GetTimestamp();
                _memoryMibSeconds += _memoryMib * _time.GetElapsedTime(_lastSample, now).TotalSeconds;
                _memoryMib = 0;
                _end = now;
            }

            try
            {
                await _client.Containers.RemoveContainerAsync(_id, new ContainerRemoveParameters { Force = true }).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                // Best effort: the daemon removes nothing it cannot reach; the copy is over either way.
            }

            _output.Writer.TryComplete();
            _exited.TrySetResult(new CopyExit(code, oom, _stopRequested));
        }
    }
}
