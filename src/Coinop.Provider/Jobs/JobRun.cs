using System.Buffers;
using Coinop.Core.Protocol;
using Coinop.Provider.Backends;
using Coinop.Provider.Hosting;
using Coinop.Runtime.Links;

namespace Coinop.Provider.Jobs;

/// <summary>
/// One job on this provider: POSTs the request to its backend and relays the backend's bytes to the market as
/// they arrive, never more than the job's window allows, then reports usage or the failure.
/// </summary>
internal sealed class JobRun
{
    private const int MaxChunkPayload = 64 * 1024;
    private const int MaxErrorBody = 16 * 1024;

    private readonly JobOrder _job;
    private readonly BackendEndpoint _backend;
    private readonly Uri _url;
    private readonly AgentContext _agent;
    private readonly Func<OutgoingFrame, ValueTask<bool>> _send;
    private readonly Func<OutgoingFrame, OutgoingFrame, ValueTask<bool>> _sendTogether;
    private readonly Action<JobRun> _ended;
    private readonly CancellationTokenSource _cancel;
    private readonly CancellationTokenRegistration _sessionEnd;
    private volatile bool _stopped;
    private volatile string? _abortReason;

    /// <param name="send">Queues a frame on the market link; false when the link is gone (the frame is released).</param>
    /// <param name="sendTogether">Queues two frames in order, in one write when the link is idle; false when the link is gone.</param>
    /// <param name="url">The backend URL the request is posted to (under <paramref name="backend"/>).</param>
    /// <param name="ended">Called once, as the job's last step (it must not throw).</param>
    public JobRun(JobOrder job, BackendEndpoint backend, Uri url, AgentContext agent, Func<OutgoingFrame, ValueTask<bool>> send,
        Func<OutgoingFrame, OutgoingFrame, ValueTask<bool>> sendTogether, Action<JobRun> ended, CancellationToken session)
    {
        _ended = ended;
        _job = job;
        _backend = backend;
        _url = url;
        _agent = agent;
        _send = send;
        _sendTogether = sendTogether;
        Window = new SendWindow(job.WindowBytes);

        // One source per job cancels it: at its deadline (its timer) or when stopped (the market, the agent, the
        // link's end). A stop says so in _stopped first, which tells it from the deadline.
        var remaining = RemainingTime(job.DeadlineUnixMs, agent.Time);
        _cancel = remaining == Timeout.InfiniteTimeSpan ? new CancellationTokenSource() : new CancellationTokenSource(remaining, agent.Time);
        _sessionEnd = session.UnsafeRegister(static s => ((JobRun)s!).Stop(), this);
    }

    public Guid JobId => _job.JobId;

    public SendWindow Window { get; }

    public Task Completion { get; private set; } = Task.CompletedTask;

    /// <summary>
    /// Starts the job on the caller's thread (the link's reader): it runs only until the backend request is sent,
    /// which never blocks, and a hand-over to the thread pool would cost a wake-up per job.
    /// </summary>
    public void Start() => Completion = RunAsync();

    /// <summary>The market cancelled the job (or the link ended): stop the backend call, send nothing more.</summary>
    public void Cancel() => Stop();

    /// <summary>The agent gives up on the job (drain deadline): stop it and tell the market why.</summary>
    public void Abort(string reason)
    {
        _abortReason = reason;
        Stop();
    }

    private void Stop()
    {
        _stopped = true;
        try
        {
            _cancel.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The job already ended.
        }
    }

    private async Task RunAsync()
    {
        var time = _agent.Time;
        var started = time.GetTimestamp();
        TimeSpan? firstByte = null;
        var outputSent = false;
        long outputTokens = 0;
        bool? failed = null;
        var outcome = "done";
        _agent.Load.Started();

        var ct = _cancel.Token;
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, _url)
            {
                Content = new ByteArrayContent(_job.Request),
            };
            // Added as is: a parsed MediaTypeHeaderValue per job only to be written back as the same text.
            request.Content.Headers.TryAddWithoutValidation("Content-Type", "application/json");
            using var response = await _agent.Backends.SendAsync(request, ct);
            if (!response.IsSuccessStatusCode)
            {
                var body = await ReadPrefixAsync(response, ct);
                var (code, message) = BackendFailure.FromStatus(response.StatusCode, body);
                outcome = code;
                failed = code != JobErrorCodes.InvalidRequest;
                await FailAsync(code, message, outputSent: false);
                return;
            }

            var usage = new UsageScanner(IsEventStream(response.Content.Headers));
            await using var stream = await response.Content.ReadAsStreamAsync(ct);

            // A body of known length (a whole answer) is known to be complete on its last read: that chunk and job_done
            // then leave together, one write and one wake-up of the market instead of two. Streams are relayed as read.
            var remainingBody = response.Content.Headers.ContentLength ?? -1;
            var doneSent = false;
            while (true)
            {
                // Read only what the window lets us send: a stalled consumer stalls the backend, not our memory.
                var credit = await Window.WaitAsync(MaxChunkPayload, ct);
                var buffer = ArrayPool<byte>.Shared.Rent(ChunkFrame.HeaderSize + credit);
                int read;
                try
                {
                    read = await stream.ReadAsync(buffer.AsMemory(ChunkFrame.HeaderSize, credit), ct);
                }
                catch
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    throw;
                }

                if (read == 0)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    break;
                }

                _agent.Metrics.BackendRead(read);
                if (firstByte is null)
                {
                    firstByte = time.GetElapsedTime(started);
                    _agent.Load.FirstByte();
                    _agent.Metrics.FirstByte(firstByte.Value);
                }

                Window.Consume(read);
                usage.Feed(buffer.AsSpan(ChunkFrame.HeaderSize, read));
                ChunkFrame.WriteHeader(buffer, _job.JobId, _job.Fence);
                var chunk = OutgoingFrame.Chunk(buffer, ChunkFrame.HeaderSize + read);
                var last = remainingBody > 0 && (remainingBody -= read) == 0;
                if (!(last ? await _sendTogether(chunk, Done(usage, started)) : await _send(chunk)))
                {
                    Stop();
                    ct.ThrowIfCancellationRequested();
                }

                outputSent = true;
                _agent.Metrics.Relayed(read);
                if (last)
                {
                    doneSent = true;
                    break;
                }
            }

            outputTokens = usage.Usage.OutputTokens;
            failed = false;
            if (!doneSent)
            {
                await _send(Done(usage, started));
            }
        }
        catch (OperationCanceledException) when (_stopped)
        {
            if (_abortReason is { } reason)
            {
                outcome = JobErrorCodes.Internal;
                await FailAsync(outcome, reason, outputSent);
            }
            else
            {
                outcome = "cancelled";
            }
        }
        catch (OperationCanceledException) when (_cancel.IsCancellationRequested)
        {
            outcome = JobErrorCodes.BackendTimeout;
            failed = true;
            await FailAsync(outcome, "the job's deadline passed before the backend finished", outputSent);
        }
        catch (Exception ex)
        {
            outcome = BackendFailure.CodeFor(ex);
            failed = true;
            await FailAsync(outcome, $"{_backend}: {ex.Message}", outputSent);
        }
        finally
        {
            var duration = time.GetElapsedTime(started);
            _agent.Load.Finished(firstByte, duration, outputTokens, failed);
            _agent.Metrics.JobEnded(outcome, duration);
            _sessionEnd.Dispose();
            _cancel.Dispose();
            _ended(this);
        }
    }

    /// <summary>
    /// The time left until a job's deadline: at least a tick (a deadline already past cancels at once, in the job), and
    /// none beyond what a timer can hold (about 49 days), which is as good as none.
    /// </summary>
    private static TimeSpan RemainingTime(long deadlineUnixMs, TimeProvider time)
    {
        var remaining = deadlineUnixMs > 0 && deadlineUnixMs < DateTimeOffset.MaxValue.ToUnixTimeMilliseconds()
            ? DateTimeOffset.FromUnixTimeMilliseconds(deadlineUnixMs) - time.GetUtcNow()
            : Timeout.InfiniteTimeSpan;
        return remaining > TimeSpan.FromMilliseconds(uint.MaxValue - 1) || remaining == Timeout.InfiniteTimeSpan ? Timeout.InfiniteTimeSpan
            : remaining > TimeSpan.Zero ? remaining : TimeSpan.FromTicks(1);
    }

    /// <summary>
    /// Whether the body is server-sent events: the Content-Type's media type, as <see cref="System.Net.Http.Headers.MediaTypeHeaderValue"/>
    /// parses it, which is built only when the raw value starts with the SSE type and goes on (parameters).
    /// </summary>
    internal static bool IsEventStream(System.Net.Http.Headers.HttpContentHeaders headers)
    {
        if (!headers.NonValidated.TryGetValues("Content-Type", out var values))
        {
            return false;
        }

        const string EventStream = "text/event-stream";
        var value = values.Count == 1 ? values.ToString().AsSpan().Trim() : default;
        return value.SequenceEqual(EventStream)
            || ((values.Count != 1 || value.StartsWith(EventStream, StringComparison.Ordinal)) && headers.ContentType?.MediaType == EventStream);
    }

    private OutgoingFrame Done(UsageScanner usage, long started)
    {
        if (!usage.Found)
        {
            ProviderLog.UsageMissing(_agent.Logger, _job.JobId);
        }

        var duration = (long)_agent.Time.GetElapsedTime(started).TotalMilliseconds;
        return OutgoingFrame.Text(JobDoneFrame.Write(_job.JobId, _job.Fence, usage.Usage, duration));
    }

    private async Task FailAsync(string code, string message, bool outputSent)
    {
        ProviderLog.JobFailed(_agent.Logger, _job.JobId, _job.Model, code, message);
        if (code is JobErrorCodes.BackendUnreachable or JobErrorCodes.ModelNotLoaded)
        {
            _agent.Discovery.Nudge();
        }

        await _send(OutgoingFrame.Text(ProtocolJson.Serialize(new JobError(_job.JobId, _job.Fence, code, message, outputSent))));
    }

    private static async Task<byte[]> ReadPrefixAsync(HttpResponseMessage response, CancellationToken ct)
    {
        await using var stream = await response.Content.ReadAsStreamAsync(ct);
        var buffer = new byte[MaxErrorBody];
        var total = 0;
        int read;
        while (total < buffer.Length && (read = await stream.ReadAsync(buffer.AsMemory(total), ct)) > 0)
        {
            total += read;
        }

        return buffer[..total];
    }
}
