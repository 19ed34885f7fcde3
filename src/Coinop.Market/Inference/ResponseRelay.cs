using System.Buffers;
using System.Text.Json;
using Coinop.Core.Pricing;
using Coinop.Core.Protocol;
using Coinop.Market.Inference.Anthropic;
using Coinop.Market.Inference.Chat;
using Coinop.Market.Inference.Responses;

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

    /// <summary>
    /// Counts the generated text of one JSON document of backend output (a stream event's data, or a whole response).
    /// False when the document is not one JSON object of valid Unicode: nothing the market may relay or translate.
    /// </summary>
    protected bool CountGenerated(ReadOnlySpan<byte> json, bool streamEvent)
    {
        var bytes = GeneratedText.Bytes(json, out var wellFormed);
        if (bytes > 0)
        {
            _textBytes += bytes;
            _textEvents += streamEvent ? 1 : 0;
        }

        return wellFormed;
    }

    /// <summary>
    /// Takes back what <see cref="CountGenerated"/> counted of <paramref name="counted"/>, which the consumer does not get as it
    /// came: <paramref name="relayed"/> goes out instead (empty: nothing does). Text the consumer never receives is not billed.
    /// </summary>
    protected void Recount(ReadOnlySpan<byte> counted, ReadOnlySpan<byte> relayed, bool streamEvent)
    {
        var before = GeneratedText.Bytes(counted);
        var after = relayed.IsEmpty ? 0 : GeneratedText.Bytes(relayed);
        _textBytes -= before - after;
        if (streamEvent && before > 0 && after == 0)
        {
            _textEvents--;
        }
    }

    /// <summary>Takes back <paramref name="textBytes"/> of generated text counted in a whole answer that the consumer does not get.</summary>
    protected void Uncount(long textBytes) => _textBytes -= textBytes;

    /// <summary>Takes the next bytes of backend output. Throws <see cref="ProviderOutputException"/> on unusable output.</summary>
    public abstract void Accept(ReadOnlySpan<byte> bytes);

    /// <summary>The provider finished: checks the output is complete and usable. False means a provider failure.</summary>
    public virtual bool Complete() => true;

    /// <summary>Writes the rest of the response, with billing's headers or trailer.</summary>
    public abstract void Finish(BillingSettlement settlement);

    /// <summary>Ends a response that already started with an error the consumer's client can read.</summary>
    public abstract void WriteError(ApiError error);

    /// <summary>
    /// After settlement, before <see cref="Finish"/>: the usage billed is final (the output's own, or the provider's
    /// report). Translating relays put it in their last event; the Responses relays store the response here, so it can
    /// be read and continued as soon as the consumer sees it complete.
    /// </summary>
    public virtual ValueTask FinishingAsync(TokenUsage usage, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
    }

    /// <summary>The relay for a request and the chosen provider's offer.</summary>
    public static ResponseRelay For(InferenceRequest request, ModelOffer offer, Guid jobId, ConsumerOutput output, int maxBufferedBytes)
    {
        var native = offer.AnthropicNative && request.Route == InferenceRoute.Messages;
        var messageId = "msg_" + jobId.ToString("N");
        if (!request.Stream || request.Route == InferenceRoute.Embeddings)
        {
            IAnswerTranslator? translator = request.Route switch
            {
                InferenceRoute.Messages when !native => new AnthropicAnswer(AnthropicReply.For(request.Root, messageId, request.Model)),
                InferenceRoute.Responses => new ResponsesAnswer(request.Turn!, request.Turn!.NewDraft(request.Root, request.Model)),
                _ => null,
            };
            return new BufferedRelay(output, native, translator, maxBufferedBytes);
        }

        return request.Route switch
        {
            InferenceRoute.Messages when native => new AnthropicSseRelay(output),
            InferenceRoute.Messages => new AnthropicFromOpenAiSseRelay(output, AnthropicReply.For(request.Root, messageId, request.Model)),
            InferenceRoute.Responses => new ResponsesSseRelay(output, request.Turn!, request.Turn!.NewDraft(request.Root, request.Model), maxBufferedBytes),
            _ => new OpenAiSseRelay(output, request.IncludeUsage),
        };
    }
}

/// <summary>Rewrites a whole OpenAI chat completion into the consumer's API.</summary>
public interface IAnswerTranslator
{
    /// <summary>False when the bytes are not a chat completion.</summary>
    bool TryTranslate(ReadOnlySpan<byte> chatCompletion, Utf8JsonWriter json, out TokenUsage usage);

    /// <summary>The usage billed is final: rewrite with it and keep what must be kept; returns the final body.</summary>
    ValueTask<ReadOnlyMemory<byte>?> FinishingAsync(TokenUsage usage, CancellationToken cancellationToken);
}

/// <summary>
/// A whole (non-streaming) response: gathered in a pooled buffer, translated when the consumer's API is not the
/// backend's, then sent with its headers and length.
/// </summary>
public sealed class BufferedRelay(ConsumerOutput output, bool anthropicNative, IAnswerTranslator? translator, int maxBytes) : ResponseRelay(output)
{
    private byte[] _buffer = ArrayPool<byte>.Shared.Rent(4096);
    private int _length;
    private ArrayBufferWriter<byte>? _translated;
    private ReadOnlyMemory<byte>? _final;
    private bool _claimsUsage; // an OpenAI answer with usage, or any native Anthropic answer: written out with the usage billed in its place

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
        if (!CountGenerated(body, streamEvent: false))
        {
            // Not one JSON object of valid Unicode (a body that merely starts with a brace, an unpaired surrogate, bytes that
            // are not UTF-8): the provider's garbage, neither relayed as a 200 nor billed, nor handed to a translation.
            return false;
        }

        if (translator is not null)
        {
            _translated = new ArrayBufferWriter<byte>(_length + 256);
            using var json = new Utf8JsonWriter(_translated, TranslationJson.Options);
            if (!translator.TryTranslate(body, json, out var usage))
            {
                return false;
            }

            Usage = usage;
            return true;
        }

        if (anthropicNative)
        {
            // A native answer as it is, but for its claims, as for OpenAI's below (Anthropic names its error by its type too).
            var facts = AnthropicClaim.Read(body);
            if (facts.Error is not null || facts.Type is AnthropicEventType.Error or AnthropicEventType.Conflicting)
            {
                return false;
            }

            Usage = facts.Usage.Usage;
            Uncount(UsageClaim.TextIn(body));
            _claimsUsage = true;
            return true;
        }

        // An OpenAI answer as it is, but for its claims: an error object is a provider failure, and its usage is the
        // provider's claim (billing checks it), shown to the consumer only as the usage billed.
        if (UsageClaim.MayClaim(body) && UsageClaim.Read(body) is var claim && (claim.Error is not null || claim.HasUsage))
        {
            if (claim.Error is not null)
            {
                return false;
            }

            Usage = claim.Usage;
            Uncount(UsageClaim.TextIn(body));
            _claimsUsage = true;
        }

        return true;
    }

    public override async ValueTask FinishingAsync(TokenUsage usage, CancellationToken cancellationToken)
    {
        if (translator is not null)
        {
            _final = await translator.FinishingAsync(usage, cancellationToken);
        }
        else if (_claimsUsage && anthropicNative)
        {
            var shown = new ArrayBufferWriter<byte>(128);
            AnthropicClaim.WriteUsage(shown, usage);
            var billed = new ArrayBufferWriter<byte>(_length + 128);
            AnthropicClaim.Rewrite(billed, _buffer.AsSpan(0, _length), shown.WrittenSpan, inMessage: false);
            _final = billed.WrittenMemory;
        }
        else if (_claimsUsage)
        {
            var billed = new ArrayBufferWriter<byte>(_length + 64);
            UsageClaim.Replace(billed, _buffer.AsSpan(0, _length), usage);
            _final = billed.WrittenMemory;
        }
    }

    public override void Finish(BillingSettlement settlement)
    {
        ReadOnlySpan<byte> body = _final is { } final ? final.Span : _translated is not null ? _translated.WrittenSpan : _buffer.AsSpan(0, _length);
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
