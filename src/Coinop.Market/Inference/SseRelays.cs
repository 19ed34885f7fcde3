using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using System.Text.Json;
using Coinop.Core.Protocol;
using Coinop.Market.Inference.Anthropic;

namespace Coinop.Market.Inference;

/// <summary>
/// A server-sent-events stream cut into whole events (a blank line ends one) however the bytes arrived, so
/// each relay edits whole events. A partial event waits in a small pooled buffer, bounded by a maximum size.
/// </summary>
public abstract class SseRelay(ConsumerOutput output) : ResponseRelay(output)
{
    public const string ContentType = "text/event-stream; charset=utf-8";
    private const int MaxEventBytes = 1024 * 1024;
    private byte[] _pending = [];
    private int _pendingLength;

    protected PipeWriter Writer => Output.Begin(ContentType);

    public override void Accept(ReadOnlySpan<byte> bytes)
    {
        if (_pendingLength == 0)
        {
            var used = Split(bytes);
            Keep(bytes[used..]);
            return;
        }

        Keep(bytes);
        var consumed = Split(_pending.AsSpan(0, _pendingLength));
        _pending.AsSpan(consumed, _pendingLength - consumed).CopyTo(_pending);
        _pendingLength -= consumed;
    }

    /// <summary>A last event the backend did not end with a blank line still counts.</summary>
    public override bool Complete()
    {
        if (!_pending.AsSpan(0, _pendingLength).Trim(" \t\r\n"u8).IsEmpty)
        {
            Accept("\n\n"u8);
        }

        return true;
    }

    /// <summary>One whole event, with its terminating blank line.</summary>
    protected abstract void OnEvent(ReadOnlySpan<byte> sseEvent);

    /// <summary>The value of the event's first <c>data:</c> line (empty when there is none).</summary>
    protected static ReadOnlySpan<byte> DataOf(ReadOnlySpan<byte> sseEvent) => Field(sseEvent, "data:"u8);

    /// <summary>The value of the event's <c>event:</c> line (empty when there is none).</summary>
    protected static ReadOnlySpan<byte> NameOf(ReadOnlySpan<byte> sseEvent) => Field(sseEvent, "event:"u8);

    /// <summary>True when a stream event's JSON carries generated text: a non-empty <c>content</c> or <c>text</c> string (a byte scan, not a parse).</summary>
    protected static bool CarriesText(ReadOnlySpan<byte> json) => HasNonEmptyString(json, "\"content\""u8) || HasNonEmptyString(json, "\"text\""u8);

    protected void WriteComment(string text)
    {
        var writer = Writer;
        writer.Write(": "u8);
        writer.Write(Encoding.UTF8.GetBytes(text.ReplaceLineEndings(" ")));
        writer.Write("\n\n"u8);
    }

    private int Split(ReadOnlySpan<byte> data)
    {
        int start = 0, scan = 0;
        while (true)
        {
            var nl = data[scan..].IndexOf((byte)'\n');
            if (nl < 0)
            {
                return start;
            }

            nl += scan;
            if (nl + 1 < data.Length && data[nl + 1] == '\n')
            {
                Event(data[start..(nl + 2)]);
                start = scan = nl + 2;
            }
            else if (nl + 2 < data.Length && data[nl + 1] == '\r' && data[nl + 2] == '\n')
            {
                Event(data[start..(nl + 3)]);
                start = scan = nl + 3;
            }
            else if (nl + 1 >= data.Length || (data[nl + 1] == '\r' && nl + 2 >= data.Length))
            {
                return start; // cannot tell yet whether the event ends here
            }
            else
            {
                scan = nl + 1;
            }
        }
    }

    /// <summary>Every event is metered here, whatever the relay then does with it.</summary>
    private void Event(ReadOnlySpan<byte> sseEvent)
    {
        var data = DataOf(sseEvent);
        if (data is [(byte)'{', ..])
        {
            CountGenerated(data, streamEvent: true);
        }

        OnEvent(sseEvent);
    }

    private void Keep(ReadOnlySpan<byte> rest)
    {
        if (rest.IsEmpty)
        {
            return;
        }

        var needed = _pendingLength + rest.Length;
        if (needed > MaxEventBytes)
        {
            throw new ProviderOutputException("a stream event exceeds 1 MiB");
        }

        if (needed > _pending.Length)
        {
            var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(needed, 4096));
            _pending.AsSpan(0, _pendingLength).CopyTo(bigger);
            if (_pending.Length > 0)
            {
                ArrayPool<byte>.Shared.Return(_pending);
            }

            _pending = bigger;
        }

        rest.CopyTo(_pending.AsSpan(_pendingLength));
        _pendingLength = needed;
    }

    private static bool HasNonEmptyString(ReadOnlySpan<byte> json, ReadOnlySpan<byte> key)
    {
        while (json.IndexOf(key) is var at && at >= 0)
        {
            json = json[(at + key.Length)..];
            if (json.TrimStart(" \t\r\n"u8) is [(byte)':', .. var value] && value.TrimStart(" \t\r\n"u8) is [(byte)'"', var first, ..] && first != (byte)'"')
            {
                return true;
            }
        }

        return false;
    }

    private static ReadOnlySpan<byte> Field(ReadOnlySpan<byte> sseEvent, ReadOnlySpan<byte> prefix)
    {
        while (!sseEvent.IsEmpty)
        {
            var end = sseEvent.IndexOf((byte)'\n');
            var line = end < 0 ? sseEvent : sseEvent[..end];
            if (line.StartsWith(prefix))
            {
                var value = line[prefix.Length..];
                if (value is [(byte)' ', ..])
                {
                    value = value[1..];
                }

                return value is [.., (byte)'\r'] ? value[..^1] : value;
            }

            if (end < 0)
            {
                break;
            }

            sseEvent = sseEvent[(end + 1)..];
        }

        return default;
    }

    protected override void Dispose(bool disposing)
    {
        if (_pending.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(_pending);
            _pending = [];
        }

        base.Dispose(disposing);
    }
}

/// <summary>
/// An OpenAI stream, relayed event by event. The market always asks the backend for the usage chunk; it reads
/// usage from it and strips it again when the consumer did not ask. <c>[DONE]</c> is held back so billing's
/// trailer can go just before it.
/// </summary>
public sealed class OpenAiSseRelay(ConsumerOutput output, bool consumerWantsUsage) : SseRelay(output)
{
    protected override void OnEvent(ReadOnlySpan<byte> sseEvent)
    {
        var data = DataOf(sseEvent);
        if (data.SequenceEqual("[DONE]"u8))
        {
            return;
        }

        if (Coinop.Core.Inference.UsageProbe.MayHoldUsage(data) && UsageScanner.TryRead(data, anthropic: false, out var usage, out var emptyChoices))
        {
            Usage = usage;
            if (!consumerWantsUsage && emptyChoices)
            {
                return;
            }
        }

        if (CarriesText(data))
        {
            OutputTokens++;
        }

        Writer.Write(sseEvent);
    }

    public override void Finish(BillingSettlement settlement)
    {
        if (settlement.StreamTrailer is { } trailer)
        {
            WriteComment(trailer);
        }

        Writer.Write("data: [DONE]\n\n"u8);
    }

    public override void WriteError(ApiError error)
    {
        var writer = Writer;
        writer.Write("data: "u8);
        error.WriteJson(writer, ErrorShape.OpenAi);
        writer.Write("\n\n"u8);
    }
}

/// <summary>An Anthropic stream from a native backend: relayed as it is, usage read on the way, <c>message_stop</c> held for the trailer.</summary>
public sealed class AnthropicSseRelay(ConsumerOutput output) : SseRelay(output)
{
    private long _input;
    private long _output;

    protected override void OnEvent(ReadOnlySpan<byte> sseEvent)
    {
        var name = NameOf(sseEvent);
        if (name.SequenceEqual("message_stop"u8))
        {
            return;
        }

        if (name.SequenceEqual("message_start"u8) || name.SequenceEqual("message_delta"u8))
        {
            ReadUsage(DataOf(sseEvent));
        }
        else if (name.SequenceEqual("content_block_delta"u8) && CarriesText(DataOf(sseEvent)))
        {
            OutputTokens++;
        }

        Writer.Write(sseEvent);
    }

    public override void Finish(BillingSettlement settlement)
    {
        if (settlement.StreamTrailer is { } trailer)
        {
            WriteComment(trailer);
        }

        Writer.Write("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"u8);
    }

    public override void WriteError(ApiError error) => AnthropicEvents.WriteError(Writer, error);

    private void ReadUsage(ReadOnlySpan<byte> data)
    {
        try
        {
            using var document = JsonDocument.Parse(data.ToArray());
            var root = document.RootElement;
            if (root.TryGetProperty("message", out var message) && message.ValueKind == JsonValueKind.Object)
            {
                root = message;
            }

            if (root.TryGetProperty("usage", out var usage) && usage.ValueKind == JsonValueKind.Object)
            {
                if (usage.TryGetProperty("input_tokens", out var i) && i.TryGetInt64(out var input) && input > 0)
                {
                    _input = input;
                }

                if (usage.TryGetProperty("output_tokens", out var o) && o.TryGetInt64(out var output))
                {
                    _output = Math.Max(_output, output);
                }

                Usage = new TokenUsage(_input, _output);
            }
        }
        catch (JsonException)
        {
            throw new ProviderOutputException("an Anthropic stream event is not JSON");
        }
        catch (InvalidOperationException)
        {
            throw new ProviderOutputException("an Anthropic stream event has an unexpected shape");
        }
    }
}

/// <summary>An OpenAI chat stream rewritten as an Anthropic message stream by <see cref="AnthropicStreamTranslator"/>.</summary>
public sealed class AnthropicFromOpenAiSseRelay(ConsumerOutput output, AnthropicReply reply) : SseRelay(output)
{
    private readonly AnthropicStreamTranslator _translator = new(reply);
    private readonly ChunkParser _parser = new();
    private TokenUsage? _billed;

    protected override void OnEvent(ReadOnlySpan<byte> sseEvent)
    {
        var data = DataOf(sseEvent);
        if (data.IsEmpty || data.SequenceEqual("[DONE]"u8))
        {
            return;
        }

        using var chunk = _parser.Parse(data);
        OutputTokens += _translator.OnChunk(chunk.RootElement, Writer);
        Usage = _translator.Usage;
    }

    public override ValueTask FinishingAsync(TokenUsage usage, CancellationToken cancellationToken)
    {
        _billed = usage;
        return ValueTask.CompletedTask;
    }

    public override void Finish(BillingSettlement settlement)
    {
        _translator.Finish(Writer, _billed);
        if (settlement.StreamTrailer is { } trailer)
        {
            WriteComment(trailer);
        }

        _translator.Stop(Writer);
    }

    public override void WriteError(ApiError error) => AnthropicEvents.WriteError(Writer, error);

    protected override void Dispose(bool disposing)
    {
        _translator.Dispose();
        _parser.Dispose();
        base.Dispose(disposing);
    }
}

/// <summary>Parses stream chunks as JSON through one reused buffer (a chunk's document is disposed before the next).</summary>
public sealed class ChunkParser : IDisposable
{
    private byte[] _buffer = [];

    public JsonDocument Parse(ReadOnlySpan<byte> data)
    {
        if (_buffer.Length < data.Length)
        {
            if (_buffer.Length > 0)
            {
                ArrayPool<byte>.Shared.Return(_buffer);
            }

            _buffer = ArrayPool<byte>.Shared.Rent(Math.Max(data.Length, 1024));
        }

        data.CopyTo(_buffer);
        try
        {
            return JsonDocument.Parse(_buffer.AsMemory(0, data.Length));
        }
        catch (JsonException)
        {
            throw new ProviderOutputException("an OpenAI stream chunk is not JSON");
        }
    }

    public void Dispose()
    {
        if (_buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = [];
        }
    }
}

/// <summary>Writes Anthropic stream events: <c>event: NAME</c>, then <c>data: {"type":NAME,...}</c>.</summary>
public static class AnthropicEvents
{
    public static void Write(PipeWriter writer, string name, Action<Utf8JsonWriter> body)
    {
        writer.Write("event: "u8);
        writer.Write(Encoding.UTF8.GetBytes(name));
        writer.Write("\ndata: "u8);
        using (var json = new Utf8JsonWriter(writer))
        {
            json.WriteStartObject();
            json.WriteString("type", name);
            body(json);
            json.WriteEndObject();
        }

        writer.Write("\n\n"u8);
    }

    public static void WriteError(PipeWriter writer, ApiError error)
    {
        writer.Write("event: error\ndata: "u8);
        error.WriteJson(writer, ErrorShape.Anthropic);
        writer.Write("\n\n"u8);
    }
}
