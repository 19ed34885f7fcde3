using System.Buffers;
using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Coinop.Core.Identity;
using Coinop.Core.Protocol;
using NSec.Cryptography;

namespace Coinop.Market.Tests.TestProviders;

/// <summary>How a test provider answers one job attempt.</summary>
public delegate Task JobScript(JobMessage job, TestJob run);

/// <summary>
/// A provider that speaks the real protocol over a real WebSocket: an Ed25519 key (NSec), a signed challenge,
/// capabilities, heartbeats, and jobs answered by a script with scripted bytes, errors and delays. It respects
/// the job window like a real agent, and records what the market sent so tests can await it.
/// </summary>
public sealed class TestProvider : IAsyncDisposable
{
    private readonly ClientWebSocket _socket = new();
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly ConcurrentDictionary<Guid, TestJob> _jobs = new();
    private readonly List<ProtocolMessage> _received = [];
    private readonly List<(Func<ProtocolMessage, bool> Match, TaskCompletionSource<ProtocolMessage> Done)> _waiters = [];
    private readonly Lock _gate = new();
    private readonly TaskCompletionSource<(WebSocketCloseStatus? Status, string? Reason)> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stop = new();
    private Task? _reader;
    private Task? _keepAlive;

    private TestProvider(Key key, string name)
    {
        Key = key;
        Name = name;
        PublicKey = key.PublicKey.Export(KeyBlobFormat.RawPublicKey);
        ProviderId = ProviderAuth.ProviderIdFor(PublicKey);
    }

    public Key Key { get; }

    public byte[] PublicKey { get; }

    public string ProviderId { get; }

    public string Name { get; }

    public AuthOk? AuthOk { get; private set; }

    public AuthFailed? AuthFailed { get; private set; }

    /// <summary>How jobs are answered; the default serves a short OpenAI-style answer.</summary>
    public JobScript Script { get; set; } = Scripts.Answer("hello from the test provider");

    /// <summary>Every job attempt received, in order.</summary>
    public ConcurrentQueue<JobMessage> Jobs { get; } = new();

    public Task<(WebSocketCloseStatus? Status, string? Reason)> Closed => _closed.Task;

    public static Key NewKey() => Key.Create(SignatureAlgorithm.Ed25519, new KeyCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport });

    /// <summary>A copy of <paramref name="key"/> (each provider disposes its own), as a restarted agent reads its key file.</summary>
    public static Key NewKeyFrom(Key key) => Key.Import(SignatureAlgorithm.Ed25519, key.Export(KeyBlobFormat.RawPrivateKey), KeyBlobFormat.RawPrivateKey,
        new KeyCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport });

    /// <summary>Connects and authenticates (or is refused: see <see cref="AuthFailed"/>). Capabilities are sent separately.</summary>
    public static async Task<TestProvider> ConnectAsync(string marketUrl, string name = "test", Key? key = null, string? enrollmentCode = null,
        Func<AuthChallenge, byte[]>? sign = null, CancellationToken cancellationToken = default)
    {
        var provider = new TestProvider(key ?? NewKey(), name);
        await provider._socket.ConnectAsync(new Uri(marketUrl.Replace("http://", "ws://", StringComparison.Ordinal) + "/provider/connect"), cancellationToken);
        var challenge = (AuthChallenge)(await provider.ReceiveOneAsync(cancellationToken))!;
        var signature = sign?.Invoke(challenge) ?? provider.Sign(challenge);
        await provider.SendAsync(new AuthResponse(Convert.ToBase64String(provider.PublicKey), Convert.ToBase64String(signature), "test/1", name, enrollmentCode), cancellationToken);
        var answer = await provider.ReceiveOneAsync(cancellationToken);
        switch (answer)
        {
            case AuthOk ok:
                provider.AuthOk = ok;
                provider._reader = provider.ReadLoopAsync();
                break;
            case AuthFailed failed:
                provider.AuthFailed = failed;
                provider._reader = provider.ReadLoopAsync();
                break;
            default:
                throw new InvalidOperationException("unexpected handshake answer: " + (answer is null ? $"closed {await provider.Closed}" : answer.GetType().Name));
        }

        return provider;
    }

    public byte[] Sign(AuthChallenge challenge) =>
        SignatureAlgorithm.Ed25519.Sign(Key, ProviderAuth.SigningPayload(challenge.MarketId, Convert.FromBase64String(challenge.Nonce)));

    /// <summary>Sends capabilities and waits until the market applied them (a heartbeat sent after them is acknowledged).</summary>
    public async Task OfferAsync(CancellationToken cancellationToken, int maxConcurrent = 8, params ModelOffer[] models)
    {
        await SendAsync(new CapabilitiesMessage(models, maxConcurrent, "test/1"), cancellationToken);
        await HeartbeatAsync(cancellationToken);
    }

    public Task OfferAsync(string model, CancellationToken cancellationToken, long inSats = 1000, long outSats = 3000, bool anthropicNative = false, bool embeddings = false) =>
        OfferAsync(cancellationToken, 8, Offer(model, inSats, outSats, anthropicNative, embeddings));

    public static ModelOffer Offer(string model, long inSats = 1000, long outSats = 3000, bool anthropicNative = false, bool embeddings = false) =>
        new(model, "vllm", inSats * 1000, outSats * 1000, 8192, 8, anthropicNative, embeddings);

    /// <summary>
    /// From now until disposed, heartbeats (idle) every half TTL as an agent does, for a provider a test keeps longer than
    /// TTL + grace (20 s) without heartbeating itself: the market rightly closes such a link as silent (4408), and a slow
    /// run of a long property test then lost its honest provider halfway. Not for a provider whose acknowledgements a
    /// test counts.
    /// </summary>
    public TestProvider KeepAlive()
    {
        var every = TimeSpan.FromMilliseconds(Math.Max(100, (AuthOk?.HeartbeatTtlMs ?? 10_000) / 2));
        var stop = _stop.Token;
        _keepAlive = Task.Run(async () =>
        {
            using var timer = new PeriodicTimer(every);
            try
            {
                while (await timer.WaitForNextTickAsync(stop))
                {
                    await SendAsync(new HeartbeatMessage(LoadFigures.Idle), stop);
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or WebSocketException or ObjectDisposedException)
            {
                // Disposed, or the link is gone.
            }
        }, CancellationToken.None);
        return this;
    }

    /// <summary>Sends a heartbeat and waits for its acknowledgement.</summary>
    public async Task<HeartbeatAck> HeartbeatAsync(CancellationToken cancellationToken)
    {
        var ack = WaitForAsync<HeartbeatAck>(_ => true, afterNow: true);
        await SendAsync(new HeartbeatMessage(LoadFigures.Idle), cancellationToken);
        return await ack.WaitAsync(TimeSpan.FromSeconds(30), cancellationToken);
    }

    public async Task SendAsync(ProtocolMessage message, CancellationToken cancellationToken = default) =>
        await SendRawAsync(ProtocolJson.Serialize(message), WebSocketMessageType.Text, cancellationToken);

    public async Task SendRawAsync(ReadOnlyMemory<byte> bytes, WebSocketMessageType type, CancellationToken cancellationToken = default)
    {
        await _sendLock.WaitAsync(cancellationToken);
        try
        {
            await _socket.SendAsync(bytes, type, true, cancellationToken);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    public async Task SendChunkAsync(Guid jobId, long fence, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken = default)
    {
        var frame = new byte[ChunkFrame.HeaderSize + payload.Length];
        ChunkFrame.WriteHeader(frame, jobId, fence);
        payload.Span.CopyTo(frame.AsSpan(ChunkFrame.HeaderSize));
        await SendRawAsync(frame, WebSocketMessageType.Binary, cancellationToken);
    }

    /// <summary>Waits for a message from the market matching <paramref name="match"/> (one already received counts unless <paramref name="afterNow"/>).</summary>
    public Task<T> WaitForAsync<T>(Func<T, bool> match, bool afterNow = false) where T : ProtocolMessage
    {
        var tcs = new TaskCompletionSource<ProtocolMessage>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            if (!afterNow)
            {
                foreach (var m in _received)
                {
                    if (m is T t && match(t))
                    {
                        return Task.FromResult(t);
                    }
                }
            }

            _waiters.Add((m => m is T t && match(t), tcs));
        }

        return tcs.Task.ContinueWith(t => (T)t.Result, TaskScheduler.Default);
    }

    public IReadOnlyList<ProtocolMessage> Received
    {
        get
        {
            lock (_gate)
            {
                return [.. _received];
            }
        }
    }

    public TestJob? JobRun(Guid jobId) => _jobs.GetValueOrDefault(jobId);

    /// <summary>Closes the socket cleanly (as a stopping agent would).</summary>
    public async Task CloseAsync()
    {
        if (_socket.State == WebSocketState.Open)
        {
            try
            {
                await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None);
            }
            catch (WebSocketException)
            {
            }
        }

        await _closed.Task.WaitAsync(TimeSpan.FromSeconds(30));
    }

    /// <summary>Drops the TCP connection without a close handshake (a crashed agent).</summary>
    public void Kill() => _socket.Abort();

    private async Task<ProtocolMessage?> ReceiveOneAsync(CancellationToken cancellationToken)
    {
        var buffer = new byte[64 * 1024];
        var length = 0;
        ValueWebSocketReceiveResult result;
        do
        {
            result = await _socket.ReceiveAsync(buffer.AsMemory(length), cancellationToken);
            length += result.Count;
        }
        while (!result.EndOfMessage);

        if (result.MessageType == WebSocketMessageType.Close)
        {
            _closed.TrySetResult((_socket.CloseStatus, _socket.CloseStatusDescription));
            return null;
        }

        return ProtocolJson.TryDeserialize(buffer.AsSpan(0, length));
    }

    private async Task ReadLoopAsync()
    {
        // Rented: hundreds of providers a run each allocating 8 MB on the large object heap cost a full collection every few.
        var buffer = ArrayPool<byte>.Shared.Rent(8 * 1024 * 1024);
        try
        {
            while (true)
            {
                var length = 0;
                ValueWebSocketReceiveResult result;
                do
                {
                    result = await _socket.ReceiveAsync(buffer.AsMemory(length), _stop.Token);
                    length += result.Count;
                }
                while (!result.EndOfMessage);

                if (result.MessageType == WebSocketMessageType.Close)
                {
                    // Answer the close like a well-behaved peer.
                    await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None);
                    break;
                }

                var message = ProtocolJson.TryDeserialize(buffer.AsSpan(0, length)) ?? throw new InvalidDataException("unparseable frame from the market");
                OnMessage(message);
            }
        }
        catch (Exception)
        {
            // The socket died; Closed reports it.
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            foreach (var job in _jobs.Values)
            {
                job.Cancel("socket closed");
            }

            _closed.TrySetResult((_socket.CloseStatus, _socket.CloseStatusDescription));
        }
    }

    private void OnMessage(ProtocolMessage message)
    {
        switch (message)
        {
            case JobMessage job:
                Jobs.Enqueue(job);
                var run = new TestJob(this, job);
                _jobs[job.JobId] = run;
                _ = Task.Run(async () =>
                {
                    try
                    {
                        await Script(job, run);
                    }
                    catch (OperationCanceledException)
                    {
                    }
                    catch (WebSocketException)
                    {
                    }
                    finally
                    {
                        run.Finished.TrySetResult();
                    }
                });
                break;
            case JobWindow window:
                _jobs.GetValueOrDefault(window.JobId)?.Grant(window.Increment);
                break;
            case JobCancel cancel:
                _jobs.GetValueOrDefault(cancel.JobId)?.Cancel(cancel.Reason);
                break;
        }

        List<TaskCompletionSource<ProtocolMessage>> done = [];
        lock (_gate)
        {
            _received.Add(message);
            for (var i = _waiters.Count - 1; i >= 0; i--)
            {
                if (_waiters[i].Match(message))
                {
                    done.Add(_waiters[i].Done);
                    _waiters.RemoveAt(i);
                }
            }
        }

        foreach (var d in done)
        {
            d.TrySetResult(message);
        }
    }

    public async ValueTask DisposeAsync()
    {
        _socket.Abort();
        await _stop.CancelAsync();
        if (_reader is not null)
        {
            await _reader;
        }

        if (_keepAlive is not null)
        {
            await _keepAlive;
        }

        _socket.Dispose();
        _stop.Dispose();
        _sendLock.Dispose();
        Key.Dispose();
    }
}

/// <summary>One job attempt at a test provider: sends output within the window, and sees the market's cancel.</summary>
public sealed class TestJob(TestProvider provider, JobMessage job)
{
    private readonly CancellationTokenSource _cancelled = new();
    private readonly Lock _gate = new();
    private long _credit = job.WindowBytes;
    private TaskCompletionSource _granted = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource _waitingForWindow = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public JobMessage Job { get; } = job;

    public CancellationToken Cancelled => _cancelled.Token;

    public string? CancelReason { get; private set; }

    public TaskCompletionSource CancelledSignal { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public TaskCompletionSource Finished { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public long BytesSent { get; private set; }

    /// <summary>Completes when the job has used up its window and waits for a grant.</summary>
    public Task WaitingForWindow
    {
        get
        {
            lock (_gate)
            {
                return _waitingForWindow.Task;
            }
        }
    }

    /// <summary>Sends output in frames of at most 64 KiB, waiting for window grants like a real agent.</summary>
    public async Task SendAsync(ReadOnlyMemory<byte> bytes)
    {
        while (!bytes.IsEmpty)
        {
            int size;
            Task? wait = null;
            lock (_gate)
            {
                size = (int)Math.Min(Math.Min(bytes.Length, 64 * 1024), _credit);
                if (size == 0)
                {
                    _granted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    wait = _granted.Task;
                    _waitingForWindow.TrySetResult();
                }
                else
                {
                    _credit -= size;
                }
            }

            if (wait is not null)
            {
                await wait.WaitAsync(Cancelled);
                continue;
            }

            await provider.SendChunkAsync(Job.JobId, Job.Fence, bytes[..size], Cancelled);
            BytesSent += size;
            bytes = bytes[size..];
        }
    }

    public Task SendAsync(string text) => SendAsync(Encoding.UTF8.GetBytes(text));

    /// <summary>Ignores the window (a misbehaving provider).</summary>
    public Task SendUnflowedAsync(ReadOnlyMemory<byte> bytes) => provider.SendChunkAsync(Job.JobId, Job.Fence, bytes, Cancelled);

    public Task DoneAsync(long input = 5, long output = 7) =>
        provider.SendAsync(new JobDone(Job.JobId, Job.Fence, new TokenUsage(input, output), 1), Cancelled);

    public Task ErrorAsync(string code, string message = "scripted failure", bool outputSent = false) =>
        provider.SendAsync(new JobError(Job.JobId, Job.Fence, code, message, outputSent), Cancelled);

    public void Grant(int increment)
    {
        lock (_gate)
        {
            _credit += increment;
            if (_waitingForWindow.Task.IsCompleted)
            {
                // Only a wait that happened is reset; an awaited-but-unreached one stays for its waiter.
                _waitingForWindow = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }
            _granted.TrySetResult();
        }
    }

    public void Cancel(string reason)
    {
        CancelReason ??= reason;
        CancelledSignal.TrySetResult();
        _cancelled.Cancel();
    }
}

/// <summary>Scripted answers in the backends' real wire formats.</summary>
public static class Scripts
{
    /// <summary>Answers every route like an OpenAI-compatible backend (SSE when streaming), or natively for Anthropic.</summary>
    public static JobScript Answer(string text, int promptTokens = 5, int completionTokens = 7) => async (job, run) =>
    {
        foreach (var part in Output(job, text, promptTokens, completionTokens))
        {
            await run.SendAsync(part);
        }

        await run.DoneAsync(promptTokens, completionTokens);
    };

    /// <summary>The output chunks a backend would produce for <paramref name="job"/>.</summary>
    public static IEnumerable<string> Output(JobMessage job, string text, int promptTokens = 5, int completionTokens = 7)
    {
        var id = "cmpl-" + job.JobId.ToString("N")[..8];
        var words = text.Split(' ');
        if (job.Format == WireFormat.Anthropic)
        {
            if (!job.Stream)
            {
                yield return Json(new
                {
                    id = "msg_native",
                    type = "message",
                    role = "assistant",
                    model = job.Model,
                    content = new[] { new { type = "text", text } },
                    stop_reason = "end_turn",
                    stop_sequence = (string?)null,
                    usage = new { input_tokens = promptTokens, output_tokens = completionTokens },
                });
                yield break;
            }

            yield return Event("message_start", new { type = "message_start", message = new { id = "msg_native", type = "message", role = "assistant", model = job.Model, content = Array.Empty<object>(), usage = new { input_tokens = promptTokens, output_tokens = 1 } } });
            yield return Event("content_block_start", new { type = "content_block_start", index = 0, content_block = new { type = "text", text = "" } });
            for (var i = 0; i < words.Length; i++)
            {
                yield return Event("content_block_delta", new { type = "content_block_delta", index = 0, delta = new { type = "text_delta", text = (i > 0 ? " " : "") + words[i] } });
            }

            yield return Event("content_block_stop", new { type = "content_block_stop", index = 0 });
            yield return Event("message_delta", new { type = "message_delta", delta = new { stop_reason = "end_turn" }, usage = new { output_tokens = completionTokens } });
            yield return Event("message_stop", new { type = "message_stop" });
            yield break;
        }

        var usage = new { prompt_tokens = promptTokens, completion_tokens = completionTokens, total_tokens = promptTokens + completionTokens };
        switch (job.Path)
        {
            case "embeddings":
                yield return Json(new { @object = "list", model = job.Model, data = new[] { new { @object = "embedding", index = 0, embedding = new[] { 0.25f, -0.5f, 1f } } }, usage = new { prompt_tokens = promptTokens, total_tokens = promptTokens } });
                yield break;
            case "completions" when !job.Stream:
                yield return Json(new { id, @object = "text_completion", created = 1, model = job.Model, choices = new[] { new { index = 0, text, finish_reason = "stop" } }, usage });
                yield break;
            case "completions":
                foreach (var (word, i) in words.Select((w, i) => (w, i)))
                {
                    yield return Data(new { id, @object = "text_completion", created = 1, model = job.Model, choices = new[] { new { index = 0, text = (i > 0 ? " " : "") + word, finish_reason = (string?)null } } });
                }

                yield return Data(new { id, @object = "text_completion", created = 1, model = job.Model, choices = Array.Empty<object>(), usage });
                yield return "data: [DONE]\n\n";
                yield break;
        }

        if (!job.Stream)
        {
            yield return Json(new
            {
                id,
                @object = "chat.completion",
                created = 1,
                model = job.Model,
                choices = new[] { new { index = 0, message = new { role = "assistant", content = text }, finish_reason = "stop" } },
                usage,
            });
            yield break;
        }

        yield return Data(new { id, @object = "chat.completion.chunk", created = 1, model = job.Model, choices = new[] { new { index = 0, delta = new { role = "assistant", content = "" }, finish_reason = (string?)null } } });
        foreach (var (word, i) in words.Select((w, i) => (w, i)))
        {
            yield return Data(new { id, @object = "chat.completion.chunk", created = 1, model = job.Model, choices = new[] { new { index = 0, delta = new { content = (i > 0 ? " " : "") + word }, finish_reason = (string?)null } } });
        }

        yield return Data(new { id, @object = "chat.completion.chunk", created = 1, model = job.Model, choices = new[] { new { index = 0, delta = new { }, finish_reason = "stop" } } });
        var includeUsage = job.Request.TryGetProperty("stream_options", out var so) && so.TryGetProperty("include_usage", out var iu) && iu.GetBoolean();
        if (includeUsage)
        {
            yield return Data(new { id, @object = "chat.completion.chunk", created = 1, model = job.Model, choices = Array.Empty<object>(), usage });
        }

        yield return "data: [DONE]\n\n";
    }

    /// <summary>Fails every attempt with <paramref name="code"/> before any output.</summary>
    public static JobScript Fail(string code = JobErrorCodes.BackendUnreachable) => (_, run) => run.ErrorAsync(code);

    /// <summary>Never answers until cancelled.</summary>
    public static JobScript Hang() => (_, run) => Task.Delay(Timeout.Infinite, run.Cancelled);

    public static string Json(object value) => JsonSerializer.Serialize(value);

    private static string Data(object value) => "data: " + Json(value) + "\n\n";

    private static string Event(string name, object value) => $"event: {name}\ndata: {Json(value)}\n\n";
}
