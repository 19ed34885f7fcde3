using System.Buffers;
using System.Text.Json;
using Coinop.Core.Pricing;
using Coinop.Core.Protocol;

namespace Coinop.Market.Inference;

/// <summary>
/// Turns a backend's output into the consumer's response: relayed as it comes for streams (with the few edits
/// the market must make), gathered whole otherwise (so usage and billing headers are known before the body).
/// </summary>
public abstract class ResponseRelay(ConsumerOutput output) : IDisposable
{
    protected ConsumerOutput Output { get; } = output;

    /// <summary>Usage read from the output itself; null when the output carried none (the provider's report is used).</summary>
    public TokenUsage? Usage { get; protected set; }

    /// <summary>
    /// Output tokens relayed so far, counted from a stream's events: one per event that carries generated text (a
    /// backend sends at least one token per such event). What a stream that breaks is charged for.
    /// </summary>
    public long OutputTokens { get; protected set; }

    private long _textBytes;
    private long _textEvents;

    /// <summary>
    /// Output tokens the market counted itself in the backend's output (<see cref="WireCount.OutputTokensOf"/> of the
    /// generated text seen): what a provider's reported usage is checked against before it is billed.
    /// </summary>
    public long CountedOutputTokens => WireCount.OutputTokensOf(_textBytes, _textEvents);

    /// <summary>Counts the generated text of one JSON document of backend output (a stream event's data, or a whole response).</summary>
    protected void CountGenerated(ReadOnlySpan<byte> json, bool streamEvent)
    {
        var bytes = GeneratedText.Bytes(json);
        if (bytes > 0)
        {
            _textBytes += bytes;
            _textEvents += streamEvent ? 1 : 0;
        }
    }

    /// <summary>Takes the next bytes of backend output. Throws <see cref="ProviderOutputException"/> on unusable output.</summary>
    public abstract void Accept(ReadOnlySpan<byte> bytes);

    /// <summary>The provider finished: checks the output is complete and usable. False means a provider failure.</summary>
    public virtual bool Complete() => true;

    /// <summary>Writes the rest of the response, with billing's headers or trailer.</summary>
    public abstract void Finish(BillingSettlement settlement);

    /// <summary>Ends a response that already started with an error the consumer's client can read.</summary>
    public abstract void WriteError(ApiError error);

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
    }

    /// <summary>The relay for a request and the chosen provider's offer.</summary>
    public static ResponseRelay For(InferenceRequest request, bool anthropicNative, Guid jobId, ConsumerOutput output, int maxBufferedBytes)
    {
        if (!request.Stream || request.Route == InferenceRoute.Embeddings)
        {
            var kind = request.Route != InferenceRoute.Messages ? BufferedKind.OpenAi
                : anthropicNative ? BufferedKind.AnthropicNative : BufferedKind.AnthropicFromOpenAi;
            return new BufferedRelay(output, kind, "msg_" + jobId.ToString("N"), request.Model, maxBufferedBytes);
        }

        if (request.Route != InferenceRoute.Messages)
        {
            return new OpenAiSseRelay(output, request.IncludeUsage);
        }

        return anthropicNative
            ? new AnthropicSseRelay(output)
            : new AnthropicFromOpenAiSseRelay(output, "msg_" + jobId.ToString("N"), request.Model);
    }
}

public enum BufferedKind
{
    OpenAi,
    AnthropicNative,
    AnthropicFromOpenAi,
}

/// <summary>A whole (non-streaming) response: gathered in a pooled buffer, then sent with its headers and length.</summary>
public sealed class BufferedRelay(ConsumerOutput output, BufferedKind kind, string messageId, string model, int maxBytes) : ResponseRelay(output)
{
    private byte[] _buffer = ArrayPool<byte>.Shared.Rent(4096);
    private int _length;
    private ArrayBufferWriter<byte>? _translated;

    public override void Accept(ReadOnlySpan<byte> bytes)
    {
        if (_length + bytes.Length > maxBytes)
        {
            throw new ProviderOutputException($"the response exceeds {maxBytes} bytes");
        }

        if (_length + bytes.Length > _buffer.Length)
        {
            var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(_buffer.Length * 2, _length + bytes.Length));
            _buffer.AsSpan(0, _length).CopyTo(bigger);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = bigger;
        }

        bytes.CopyTo(_buffer.AsSpan(_length));
        _length += bytes.Length;
    }

    public override bool Complete()
    {
        var body = _buffer.AsSpan(0, _length);
        CountGenerated(body, streamEvent: false);
        if (kind == BufferedKind.AnthropicFromOpenAi)
        {
            _translated = new ArrayBufferWriter<byte>(_length + 256);
            using var json = new Utf8JsonWriter(_translated);
            if (!AnthropicTranslation.TryWriteMessage(body, messageId, model, json, out var usage))
            {
                return false;
            }

            Usage = usage;
            return true;
        }

        if (UsageScanner.TryRead(body, kind == BufferedKind.AnthropicNative, out var read, out _))
        {
            Usage = read;
        }

        return body.TrimStart(" \t\r\n"u8) is [(byte)'{', ..];
    }

    public override void Finish(BillingSettlement settlement)
    {
        ReadOnlySpan<byte> body = _translated is not null ? _translated.WrittenSpan : _buffer.AsSpan(0, _length);
        var writer = Output.Begin("application/json", settlement.Headers, body.Length);
        writer.Write(body);
    }

    public override void WriteError(ApiError error)
    {
        // A whole response is written at once, after completion: there is never a started body to end.
    }

    protected override void Dispose(bool disposing)
    {
        if (_buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = [];
            _length = 0;
        }

        base.Dispose(disposing);
    }
}
