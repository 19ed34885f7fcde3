using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;

namespace Coinop.Market.Tests.Abuse;

/// <summary>
/// Sends attacks to <c>/mint/v1/ws</c> on one connection and judges what comes back. After each attack a probe (an
/// unsubscribe with its own id) follows, so everything before the probe's answer is the attack's; a connection the
/// server closes is replaced. The verdict: every text frame is a well-formed JSON-RPC answer or notification, a close
/// carries a status code, and the connection never just ends (an exception that escaped the handler).
/// </summary>
public sealed class MintSocketSweep(string marketUrl, CancellationToken cancellationToken) : IAsyncDisposable
{
    private RawWebSocket? _socket;
    private int _probes;

    /// <summary>Attacks sent and, by outcome, how many.</summary>
    public ConcurrentDictionary<string, int> Outcomes { get; } = new(StringComparer.Ordinal);

    /// <summary>Sends the attack; returns what is wrong with how it was answered, or null.</summary>
    public async Task<string?> SendAsync(HostileMintMessage attack)
    {
        if (attack.FreshConnection && _socket is not null)
        {
            await ReplaceAsync();
        }

        _socket ??= await RawWebSocket.ConnectAsync(marketUrl, "/mint/v1/ws", cancellationToken);
        var probe = "probe-" + Interlocked.Increment(ref _probes);
        using var guard = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        guard.CancelAfter(TimeSpan.FromSeconds(60)); // a bound on a hang, so it fails the sweep instead of the run
        try
        {
            foreach (var frame in attack.Frames)
            {
                await _socket.SendFrameAsync(frame.Opcode, frame.Payload, guard.Token, frame.Fin, frame.Masked, frame.Reserved);
            }

            // No probe after an attack the server must close for: its unread bytes would make the close a reset, losing the close frame.
            if (attack.CloseCode is null)
            {
                await _socket.SendTextAsync($$$"""{"jsonrpc":"2.0","id":"{{{probe}}}","method":"unsubscribe","params":{"subId":"{{{probe}}}"}}""", guard.Token);
            }
        }
        catch (IOException)
        {
            // The server closed already: what it said is read below.
        }

        var answers = new List<JsonObject>();
        int? closeCode = null;
        string? bad = null; // the first bad frame; the rest is read up to the probe's answer all the same
        try
        {
            while (true)
            {
                var frame = await _socket.ReceiveAsync(guard.Token);
                if (frame is null)
                {
                    await ReplaceAsync();
                    if (attack.MayReset && answers.Count == 0 && bad is null)
                    {
                        return Count(attack, "reset after a framing violation", null);
                    }

                    return Count(attack, "dropped", $"the connection ended without a close frame after {answers.Count} answers ({string.Join("; ", answers)})");
                }

                if (frame.Opcode == RawFrame.Close)
                {
                    closeCode = frame.CloseCode;
                    try
                    {
                        await _socket.SendFrameAsync(RawFrame.Close, frame.Payload.AsMemory(0, Math.Min(2, frame.Payload.Length)), guard.Token);
                    }
                    catch (IOException)
                    {
                    }

                    await _socket.EndedAsync(guard.Token);
                    await ReplaceAsync();
                    break;
                }

                if (frame.Opcode != RawFrame.Text)
                {
                    bad ??= $"a frame that is not text: {frame}";
                    continue;
                }

                if (Problem(frame.AsText, out var message) is { } problem)
                {
                    bad ??= $"{problem}: {frame}";
                    continue;
                }

                if (message!["id"] is JsonValue id && id.TryGetValue<string>(out var s) && s == probe)
                {
                    break;
                }

                answers.Add(message);
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            await ReplaceAsync();
            return Count(attack, "hang", $"no answer and no close within 60 s after {answers.Count} answers");
        }

        if (bad is not null)
        {
            return Count(attack, "bad answer", bad);
        }

        if (closeCode is not null)
        {
            if (attack.ErrorCode is not null)
            {
                return Count(attack, "closed", $"closed with {closeCode} where a JSON-RPC error {attack.ErrorCode} was due (answers: {string.Join("; ", answers)})");
            }

            if (attack.CloseCode is { } dueClose && dueClose != closeCode)
            {
                return Count(attack, "closed", $"closed with {closeCode} where {dueClose} was due");
            }

            return closeCode is >= 1000 and < 5000 ? Count(attack, $"close {closeCode}", null) : Count(attack, "closed", $"a close without a valid code ({closeCode})");
        }

        if (attack.CloseCode is { } due)
        {
            return Count(attack, "open", $"still open where a close with {due} was due (answers: {string.Join("; ", answers)})");
        }

        var first = answers.FirstOrDefault(a => a["method"] is null);
        var code = first?["error"]?["code"]?.GetValue<int>();
        if (attack.ErrorCode is { } dueCode && code != dueCode)
        {
            return Count(attack, "wrong error", $"answered {first?.ToJsonString() ?? "nothing"} where a JSON-RPC error {dueCode} was due");
        }

        return Count(attack, code is null ? first is null ? "no answer" : "result" : $"error {code}", null);
    }

    /// <summary>What is wrong with a text frame from the server, or null when it is a JSON-RPC 2.0 answer or a NUT-17 notification.</summary>
    public static string? Problem(string text, out JsonObject? message)
    {
        message = null;
        try
        {
            message = JsonNode.Parse(text) as JsonObject;
        }
        catch (JsonException)
        {
        }

        if (message is null)
        {
            return "not a JSON object";
        }

        if (message["jsonrpc"]?.GetValueKind() != JsonValueKind.String || message["jsonrpc"]!.GetValue<string>() != "2.0")
        {
            return "no jsonrpc 2.0";
        }

        if (message["method"] is not null)
        {
            return message["method"]!.GetValue<string>() == "subscribe" && message["params"]?["subId"]?.GetValueKind() == JsonValueKind.String
                && message["params"]?["payload"] is JsonObject && !message.ContainsKey("id")
                ? null
                : "a malformed notification";
        }

        if (!message.ContainsKey("id") || message["id"]?.GetValueKind() is not (null or JsonValueKind.String or JsonValueKind.Number))
        {
            return "an answer without a string, number or null id";
        }

        if (message["error"] is JsonObject error)
        {
            return message.ContainsKey("result") ? "both error and result"
                : error["code"]?.GetValueKind() != JsonValueKind.Number ? "an error without a code"
                : error["message"]?.GetValueKind() != JsonValueKind.String || string.IsNullOrWhiteSpace(error["message"]!.GetValue<string>()) ? "an error without a message"
                : null;
        }

        return message["result"] is JsonObject result && result["status"]?.GetValue<string>() == "OK" && result["subId"]?.GetValueKind() == JsonValueKind.String
            ? null
            : "neither a result nor an error";
    }

    public async ValueTask DisposeAsync()
    {
        if (_socket is not null)
        {
            await _socket.DisposeAsync();
        }
    }

    private async Task ReplaceAsync()
    {
        await _socket!.DisposeAsync();
        _socket = null;
    }

    private string? Count(HostileMintMessage attack, string outcome, string? failure)
    {
        Outcomes.AddOrUpdate($"{attack.What.Split(':')[0]} → {outcome}", 1, (_, n) => n + 1);
        return failure is null ? null : $"{attack}\n  {failure}";
    }
}

/// <summary>Every log entry at Error or above, or with an exception (what an exception escaping a handler leaves).</summary>
public sealed class ErrorLogs : ILoggerProvider
{
    private readonly ConcurrentQueue<string> _entries = new();

    public IReadOnlyList<string> Entries => [.. _entries];

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class Logger(ErrorLogs owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (logLevel >= LogLevel.Error || (exception is not null && logLevel >= LogLevel.Warning))
            {
                owner._entries.Enqueue($"{logLevel} {category} ({eventId.Id}): {formatter(state, exception)} {exception}");
            }
        }
    }
}
