using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Threading.Channels;
using Coinop.Core.Identity;
using Coinop.Core.Protocol;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using NSec.Cryptography;

namespace Coinop.Provider.Tests.Infrastructure;

/// <summary>
/// A market stand-in on real Kestrel that speaks the provider protocol: it issues challenges, verifies the
/// agent's signature with NSec, answers auth_ok, acknowledges heartbeats, and lets a test send jobs and read
/// their chunks. Each accepted connection appears on <see cref="Connections"/>.
/// </summary>
public sealed class FakeMarket : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly Channel<MarketConnection> _connections = Channel.CreateUnbounded<MarketConnection>();

    private FakeMarket(WebApplication app) => _app = app;

    public string MarketId { get; set; } = "market-under-test";

    /// <summary>TTL handed out in auth_ok and heartbeat acks.</summary>
    public int HeartbeatTtlMs { get; set; } = 30_000;

    /// <summary>When false the market stays silent after auth (no heartbeat acks): the agent should find the link dead.</summary>
    public bool AckHeartbeats { get; set; } = true;

    /// <summary>When set, authentication is refused with this reason.</summary>
    public string? RefuseWith { get; set; }

    /// <summary>When true the market closes new connections with 1001 drain:deploy before the challenge (a deploy).</summary>
    public bool DeployCloseBeforeAuth { get; set; }

    public string Url { get; private set; } = "";

    public ChannelReader<MarketConnection> Connections => _connections.Reader;

    public static async Task<FakeMarket> StartAsync(Action<FakeMarket>? configure = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var market = new FakeMarket(app);
        configure?.Invoke(market);
        app.UseWebSockets();
        app.Map("/provider/connect", market.AcceptAsync);
        await app.StartAsync();
        market.Url = app.Urls.First();
        return market;
    }

    /// <summary>The next connection that authenticated (or was refused), within a generous timeout.</summary>
    public async Task<MarketConnection> NextConnectionAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(30));
        return await _connections.Reader.ReadAsync(cts.Token);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private async Task AcceptAsync(HttpContext context)
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            context.Response.StatusCode = 400;
            return;
        }

        using var socket = await context.WebSockets.AcceptWebSocketAsync();
        var connection = new MarketConnection(this, socket);
        await connection.RunAsync(_connections.Writer, context.RequestAborted);
    }
}

/// <summary>One provider connection as the market sees it.</summary>
public sealed class MarketConnection
{
    private readonly FakeMarket _market;
    private readonly WebSocket _socket;
    private readonly SemaphoreSlim _sendGate = new(1, 1);
    private readonly Channel<ProtocolMessage> _messages = Channel.CreateUnbounded<ProtocolMessage>();
    private readonly ConcurrentDictionary<Guid, JobTranscript> _jobs = new();
    private readonly TaskCompletionSource<(WebSocketCloseStatus?, string?)> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    internal MarketConnection(FakeMarket market, WebSocket socket)
    {
        _market = market;
        _socket = socket;
    }

    public byte[] Nonce { get; } = RandomNumberGenerator.GetBytes(ProviderAuth.NonceBytes);

    public AuthResponse? Auth { get; private set; }

    /// <summary>Whether the signature verified over the protocol's payload for this market and nonce.</summary>
    public bool SignatureValid { get; private set; }

    public string? ProviderId { get; private set; }

    /// <summary>Every control message the provider sent after authenticating, in order.</summary>
    public ChannelReader<ProtocolMessage> Messages => _messages.Reader;

    /// <summary>Completes when the provider closed the socket (its close status) or the socket broke (null).</summary>
    public Task<(WebSocketCloseStatus? Status, string? Reason)> Closed => _closed.Task;

    /// <summary>Waits for the next message of type <typeparamref name="T"/> matching <paramref name="match"/>, skipping others.</summary>
    public async Task<T> NextAsync<T>(Func<T, bool>? match = null, TimeSpan? timeout = null)
        where T : ProtocolMessage
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(30));
        try
        {
            while (true)
            {
                var message = await _messages.Reader.ReadAsync(cts.Token);
                if (message is T typed && (match is null || match(typed)))
                {
                    return typed;
                }
            }
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"no {typeof(T).Name} from the provider in time");
        }
    }

    /// <summary>Sends a job. With <paramref name="autoGrant"/> the market grants back every byte it receives (a fast consumer).</summary>
    public async Task<JobTranscript> SendJobAsync(JobMessage job, bool autoGrant = true)
    {
        var transcript = new JobTranscript(job, autoGrant);
        _jobs[job.JobId] = transcript;
        await SendAsync(job);
        return transcript;
    }

    public async Task GrantAsync(Guid jobId, int bytes)
    {
        _jobs[jobId].Granted(bytes);
        await SendAsync(new JobWindow(jobId, bytes));
    }

    public async Task SendAsync(ProtocolMessage message)
    {
        await _sendGate.WaitAsync();
        try
        {
            await _socket.SendAsync(ProtocolJson.Serialize(message), WebSocketMessageType.Text, true, CancellationToken.None);
        }
        finally
        {
            _sendGate.Release();
        }
    }

    public async Task CloseAsync(WebSocketCloseStatus status, string reason)
    {
        await _sendGate.WaitAsync();
        try
        {
            await _socket.CloseOutputAsync(status, reason, CancellationToken.None);
        }
        finally
        {
            _sendGate.Release();
        }
    }

    internal async Task RunAsync(ChannelWriter<MarketConnection> connections, CancellationToken aborted)
    {
        var buffer = new byte[1 << 20];
        try
        {
            if (_market.DeployCloseBeforeAuth)
            {
                await connections.WriteAsync(this, aborted);
                await CloseAsync((WebSocketCloseStatus)CloseCodes.GoingAway, CloseCodes.DrainDeploy);
                await DrainUntilClosedAsync(buffer, aborted);
                return;
            }

            await SendAsync(new AuthChallenge(Convert.ToBase64String(Nonce), _market.MarketId, ProviderAuth.ProtocolVersion));
            var (type, length) = await ReceiveAsync(buffer, aborted);
            Auth = type == WebSocketMessageType.Text ? ProtocolJson.TryDeserialize(buffer.AsSpan(0, length)) as AuthResponse : null;
            if (Auth is null)
            {
                _closed.TrySetResult((null, "no auth_response"));
                return;
            }

            var publicKey = Convert.FromBase64String(Auth.PublicKey);
            SignatureValid = PublicKey.TryImport(SignatureAlgorithm.Ed25519, publicKey, KeyBlobFormat.RawPublicKey, out var key)
                && SignatureAlgorithm.Ed25519.Verify(key!, ProviderAuth.SigningPayload(_market.MarketId, Nonce), Convert.FromBase64String(Auth.Signature));
            ProviderId = ProviderAuth.ProviderIdFor(publicKey);
            var refusal = !SignatureValid ? "bad_signature" : _market.RefuseWith;
            if (refusal is not null)
            {
                await SendAsync(new AuthFailed(refusal));
                await connections.WriteAsync(this, aborted);
                await CloseAsync((WebSocketCloseStatus)CloseCodes.AuthFailed, refusal);
                await DrainUntilClosedAsync(buffer, aborted);
                return;
            }

            await SendAsync(new AuthOk(ProviderId, _market.HeartbeatTtlMs));
            await connections.WriteAsync(this, aborted);
            await ReadLoopAsync(buffer, aborted);
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException)
        {
            _closed.TrySetResult((null, ex.Message));
        }
        finally
        {
            _messages.Writer.TryComplete();
            foreach (var job in _jobs.Values)
            {
                job.LinkLost();
            }
        }
    }

    private async Task ReadLoopAsync(byte[] buffer, CancellationToken aborted)
    {
        while (true)
        {
            var (type, length) = await ReceiveAsync(buffer, aborted);
            if (type == WebSocketMessageType.Close)
            {
                _closed.TrySetResult((_socket.CloseStatus, _socket.CloseStatusDescription));
                if (_socket.State == WebSocketState.CloseReceived)
                {
                    await CloseAsync(WebSocketCloseStatus.NormalClosure, "");
                }

                return;
            }

            if (type == WebSocketMessageType.Binary)
            {
                if (ChunkFrame.TryReadHeader(buffer.AsSpan(0, length), out var jobId, out var fence) && _jobs.TryGetValue(jobId, out var job))
                {
                    var granted = job.OnChunk(buffer.AsSpan(ChunkFrame.HeaderSize, length - ChunkFrame.HeaderSize), fence);
                    if (granted > 0)
                    {
                        await SendAsync(new JobWindow(jobId, granted));
                    }
                }

                continue;
            }

            var message = ProtocolJson.TryDeserialize(buffer.AsSpan(0, length));
            if (message is null)
            {
                continue;
            }

            if (message is HeartbeatMessage && _market.AckHeartbeats)
            {
                await SendAsync(new HeartbeatAck(_market.HeartbeatTtlMs));
            }

            if (message is JobDone done && _jobs.TryGetValue(done.JobId, out var finished))
            {
                finished.OnEnd(done);
            }
            else if (message is JobError error && _jobs.TryGetValue(error.JobId, out var failed))
            {
                failed.OnEnd(error);
            }

            await _messages.Writer.WriteAsync(message, aborted);
        }
    }

    private async Task DrainUntilClosedAsync(byte[] buffer, CancellationToken aborted)
    {
        while ((await ReceiveAsync(buffer, aborted)).Type != WebSocketMessageType.Close)
        {
        }

        _closed.TrySetResult((_socket.CloseStatus, _socket.CloseStatusDescription));
    }

    private async Task<(WebSocketMessageType Type, int Length)> ReceiveAsync(byte[] buffer, CancellationToken aborted)
    {
        var length = 0;
        while (true)
        {
            var result = await _socket.ReceiveAsync(buffer.AsMemory(length), aborted);
            length += result.Count;
            if (result.EndOfMessage || result.MessageType == WebSocketMessageType.Close)
            {
                return (result.MessageType, length);
            }
        }
    }
}

/// <summary>What the market received for one job: output bytes, chunk count, and how it ended.</summary>
public sealed class JobTranscript
{
    private readonly Lock _gate = new();
    private readonly MemoryStream _output = new();
    private readonly bool _autoGrant;
    private readonly TaskCompletionSource<ProtocolMessage?> _end = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly List<(long Bytes, TaskCompletionSource Done)> _waiters = [];
    private long _granted;

    internal JobTranscript(JobMessage job, bool autoGrant)
    {
        Job = job;
        _autoGrant = autoGrant;
        _granted = job.WindowBytes;
    }

    public JobMessage Job { get; }

    public int Chunks { get; private set; }

    public long Received { get; private set; }

    /// <summary>True if the provider ever sent more than the window allowed.</summary>
    public bool Overrun { get; private set; }

    /// <summary>True if any chunk carried a fence other than the job's.</summary>
    public bool WrongFence { get; private set; }

    public byte[] Output
    {
        get
        {
            lock (_gate)
            {
                return _output.ToArray();
            }
        }
    }

    /// <summary>job_done or job_error; null if the link was lost first.</summary>
    public Task<ProtocolMessage?> Ended => _end.Task;

    public async Task<ProtocolMessage?> EndedWithin(TimeSpan? timeout = null) =>
        await _end.Task.WaitAsync(timeout ?? TimeSpan.FromSeconds(30));

    public Task WaitForBytesAsync(long bytes)
    {
        lock (_gate)
        {
            if (Received >= bytes)
            {
                return Task.CompletedTask;
            }

            var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((bytes, tcs));
            return tcs.Task.WaitAsync(TimeSpan.FromSeconds(30));
        }
    }

    internal void Granted(long bytes)
    {
        lock (_gate)
        {
            _granted += bytes;
        }
    }

    /// <returns>The bytes to grant back (auto-grant), else 0.</returns>
    internal int OnChunk(ReadOnlySpan<byte> payload, long fence)
    {
        var done = new List<TaskCompletionSource>();
        lock (_gate)
        {
            _output.Write(payload);
            Chunks++;
            Received += payload.Length;
            Overrun |= Received > _granted;
            WrongFence |= fence != Job.Fence;
            for (var i = _waiters.Count - 1; i >= 0; i--)
            {
                if (Received >= _waiters[i].Bytes)
                {
                    done.Add(_waiters[i].Done);
                    _waiters.RemoveAt(i);
                }
            }

            if (_autoGrant)
            {
                _granted += payload.Length;
            }
        }

        foreach (var d in done)
        {
            d.TrySetResult();
        }

        return _autoGrant ? payload.Length : 0;
    }

    internal void OnEnd(ProtocolMessage end) => _end.TrySetResult(end);

    internal void LinkLost() => _end.TrySetResult(null);
}
