using System.Buffers;
using System.Text;
using Coinop.Core.Protocol;
using Coinop.Market.Gateway;

namespace Coinop.Market.Cluster;

/// <summary>
/// One job attempt forwarded to the node holding its provider, seen from the node serving the consumer. A pump reads the
/// holder's frames and hands them to the attempt's sink exactly as a local session would: output only within the window
/// the consumer granted (it stops reading, so the holder's writes stall and it grants its provider nothing more: the same
/// backpressure end to end), then exactly one of done, error or lost. Cancelling aborts the request; the holder sees the
/// abort and cancels the job at the provider.
/// </summary>
internal sealed class ForwardedAttempt : IDisposable
{
    private readonly IJobAttemptSink _sink;
    private readonly int _window;
    private readonly CancellationTokenSource _abort = new();
    private readonly Lock _gate = new();
    private long _credit;
    private TaskCompletionSource? _creditWaiter;
    private int _finished;

    public ForwardedAttempt(IJobAttemptSink sink, int windowBytes)
    {
        _sink = sink;
        _window = windowBytes;
        _credit = windowBytes;
        Aborted = _abort.Token;
    }

    /// <summary>Fires when the attempt is cancelled or lost (taken once: the source is disposed when the pump ends).</summary>
    public CancellationToken Aborted { get; }

    /// <summary>True once the sink got its last event (or the attempt was cancelled).</summary>
    public bool Finished => Volatile.Read(ref _finished) != 0;

    /// <summary>Reads the holder's frames until the last one; any failure to read is the attempt lost.</summary>
    public async Task PumpAsync(HttpResponseMessage response, Action<string> onBroken)
    {
        var header = new byte[ForwardFrames.HeaderSize];
        try
        {
            using (response)
            {
                await using var stream = await response.Content.ReadAsStreamAsync(Aborted);
                while (true)
                {
                    var frame = await ForwardFrames.ReadAsync(stream, header, Aborted);
                    if (frame is not { } f)
                    {
                        Lose("node_lost: the holding node ended the stream early");
                        return;
                    }

                    try
                    {
                        if (await DeliverAsync(f.Kind, f.Buffer.AsMemory(0, f.Length)))
                        {
                            return;
                        }
                    }
                    finally
                    {
                        ArrayPool<byte>.Shared.Return(f.Buffer);
                    }
                }
            }
        }
        catch (Exception) when (Aborted.IsCancellationRequested)
        {
            // Cancelled by the request that owns the job, or lost on purpose: the sink has been told what it needs.
        }
        catch (Exception ex) when (ex is IOException or HttpRequestException or InvalidDataException or EndOfStreamException)
        {
            onBroken(ex.Message);
            Lose("node_lost: " + ex.Message);
        }
        finally
        {
            Interlocked.Exchange(ref _finished, 1);
            _abort.Dispose();
        }
    }

    /// <summary>The consumer took <paramref name="bytes"/>: the pump may hand that much more output on.</summary>
    public void Grant(int bytes)
    {
        TaskCompletionSource? waiter;
        lock (_gate)
        {
            _credit += bytes;
            waiter = _creditWaiter;
            _creditWaiter = null;
        }

        waiter?.TrySetResult();
    }

    /// <summary>The request that owns the job is done with it (or cancels it): stop quietly.</summary>
    public void Cancel()
    {
        Interlocked.Exchange(ref _finished, 1);
        Abort();
    }

    /// <summary>The attempt cannot go on (its node is gone): the sink is told once, then the request is aborted.</summary>
    public void Lose(string reason)
    {
        if (Interlocked.Exchange(ref _finished, 1) == 0)
        {
            _sink.OnLost(reason);
        }

        Abort();
    }

    /// <summary>For an attempt whose pump never started.</summary>
    public void Dispose() => _abort.Dispose();

    /// <returns>True after the last frame.</returns>
    private async ValueTask<bool> DeliverAsync(byte kind, ReadOnlyMemory<byte> payload)
    {
        switch (kind)
        {
            case ForwardFrames.Chunk:
                if (payload.Length > _window)
                {
                    Lose("window_overrun");
                    return true;
                }

                await WaitForCreditAsync(payload.Length);
                if (!Finished && !_sink.OnChunk(payload.Span))
                {
                    Lose("window_overrun");
                    return true;
                }

                return false;
            case ForwardFrames.Done when ProtocolJson.TryDeserialize(payload.Span) is JobDone { Usage: not null } done:
                Finish(() => _sink.OnDone(done));
                return true;
            case ForwardFrames.Error when ProtocolJson.TryDeserialize(payload.Span) is JobError { Code: not null } error:
                Finish(() => _sink.OnError(error));
                return true;
            case ForwardFrames.Lost:
                Lose(payload.Length is > 0 and <= 512 ? Encoding.UTF8.GetString(payload.Span) : "provider_lost");
                return true;
            default:
                Lose("node_lost: the holding node sent a frame that cannot be read");
                return true;
        }
    }

    private void Finish(Action deliver)
    {
        if (Interlocked.Exchange(ref _finished, 1) == 0)
        {
            deliver();
        }
    }

    private async ValueTask WaitForCreditAsync(int needed)
    {
        while (true)
        {
            TaskCompletionSource waiter;
            lock (_gate)
            {
                if (_credit >= needed)
                {
                    _credit -= needed;
                    return;
                }

                _creditWaiter = waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }

            await waiter.Task.WaitAsync(Aborted);
        }
    }

    private void Abort()
    {
        try
        {
            _abort.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }
}
