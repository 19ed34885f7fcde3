using System.Buffers;
using System.IO.Pipelines;
using System.Text.Json;
using Coinop.Market.Inference.Chat;
using Coinop.Core.Protocol;
using Coinop.Market.Inference.Anthropic;
using Coinop.Market.Inference.Responses;
using Microsoft.AspNetCore.Http;
using Coinop.Core.Text;

namespace Coinop.Market.Inference;

/// <summary>
/// A consumer's request, read once into a pooled buffer and checked for what the market itself needs (model,
/// stream, limits, the fields a backend cannot do without). Everything else passes to the backend untouched.
/// </summary>
public sealed class InferenceRequest : IDisposable
{
    private readonly InferenceRequestCheck _checked;
    private byte[]? _body;
    private JsonDocument? _document;
    private JsonDocument? _forOpenAiBackend;
    private ChatBackend _forOpenAiBackendOf;

    private InferenceRequest(InferenceRoute route, byte[] body, int length, JsonDocument document)
    {
        Route = route;
        _checked = new InferenceRequestCheck(route);
        _body = body;
        BodyLength = length;
        _document = document;
    }

    public InferenceRoute Route { get; }

    public string Model => _checked.Model;

    public bool Stream => _checked.Stream;

    /// <summary>The consumer asked for the usage chunk at the end of a stream (OpenAI <c>stream_options.include_usage</c>).</summary>
    public bool IncludeUsage => _checked.IncludeUsage;

    /// <summary>The output limit the consumer set, if any: the largest of the limits it names (backends differ in which they honour).</summary>
    public long? MaxTokens => _checked.MaxTokens;

    /// <summary>How many outputs the request asks for (<c>n</c> × the prompts of a prompt array; see <see cref="OutputAsk"/>).</summary>
    public int Outputs => _checked.Outputs;

    /// <summary>What the reservation for this request is based on.</summary>
    public Coinop.Core.Pricing.ReservationBasis ReservationBasis => new(InputTokenEstimate, Route == InferenceRoute.Embeddings ? 0 : MaxTokens, Outputs);

    public int BodyLength { get; }

    /// <summary>For <c>/v1/messages</c>: false when the request has content a translation to OpenAI chat cannot carry.</summary>
    public bool Translatable => Anthropic?.NeedsNative is null;

    /// <summary>The request carries images: only offers that declare vision can serve it.</summary>
    public bool HasImages => _checked.HasImages;

    /// <summary>For <c>/v1/messages</c>: what the request asks of a provider.</summary>
    public AnthropicShape? Anthropic => _checked.Anthropic;

    /// <summary>For <c>/v1/responses</c>: what the request asks of a provider and the market.</summary>
    public ResponsesShape? Responses => _checked.Responses;

    /// <summary>For <c>/v1/responses</c>: its place in its conversation, set by <see cref="ResponsesService.ResolveAsync"/>.</summary>
    public ResponsesTurn? Turn { get; set; }

    public JsonElement Root => _document!.RootElement;

    /// <summary>
    /// A conservative estimate of the prompt's tokens (about three bytes a token) for reservations: the body, and for a
    /// Responses request that continues a stored one, the earlier conversation the backend also gets.
    /// </summary>
    public long InputTokenEstimate => (BodyLength + (Turn?.History.Length ?? 0) + 2) / 3;

    /// <summary>Reads and checks the body; returns the request, or the error to answer with.</summary>
    public static async Task<(InferenceRequest? Request, ApiError? Error)> ReadAsync(
        HttpRequest http, InferenceRoute route, long limit, CancellationToken cancellationToken)
    {
        if (http.ContentLength > limit)
        {
            return (null, ApiError.TooLarge(limit));
        }

        var (body, length) = await ReadBodyAsync(http.BodyReader, limit, cancellationToken);
        if (body is null)
        {
            return (null, ApiError.TooLarge(limit));
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(body.AsMemory(0, length), new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException ex)
        {
            ArrayPool<byte>.Shared.Return(body);
            return (null, ApiError.InvalidBody("the body is not valid JSON: " + ex.Message));
        }

        if (!JsonStrings.AllReadable(body.AsSpan(0, length)))
        {
            document.Dispose();
            ArrayPool<byte>.Shared.Return(body);
            return (null, ApiError.InvalidBody(JsonStrings.Unreadable));
        }

        var request = new InferenceRequest(route, body, length, document);
        if (request._checked.Check(request.Root) is { } error)
        {
            request.Dispose();
            return (null, error);
        }

        return (request, null);
    }

    /// <summary>
    /// The request as the chosen backend gets it. An OpenAI stream always asks for usage so the market can meter
    /// (the usage chunk is stripped again when the consumer did not ask); an Anthropic request goes as it is to
    /// a native backend and is translated to OpenAI chat for any other; a Responses request is always translated.
    /// </summary>
    public JsonElement ForBackend(ModelOffer offer)
    {
        if (Route == InferenceRoute.Messages && offer.AnthropicNative)
        {
            return Root;
        }

        if (Route is not (InferenceRoute.Messages or InferenceRoute.Responses) && (!Stream || IncludeUsage))
        {
            return Root;
        }

        var backend = ChatBackend.For(offer);
        if (_forOpenAiBackend is null || _forOpenAiBackendOf != backend)
        {
            var buffer = new ArrayBufferWriter<byte>(BodyLength + 64);
            using (var json = new Utf8JsonWriter(buffer, TranslationJson.Options))
            {
                switch (Route)
                {
                    case InferenceRoute.Messages:
                        AnthropicToChat.Write(Root, backend, json);
                        break;
                    case InferenceRoute.Responses:
                        ResponsesToChat.Write(Root, Turn!.History.Span, Turn.InputMessages.Span, json);
                        break;
                    default:
                        WriteWithUsageRequested(Root, json);
                        break;
                }
            }

            _forOpenAiBackend?.Dispose();
            _forOpenAiBackend = JsonDocument.Parse(buffer.WrittenMemory);
            _forOpenAiBackendOf = backend;
        }

        return _forOpenAiBackend.RootElement;
    }

    public WireFormat FormatFor(ModelOffer offer) =>
        Route == InferenceRoute.Messages && offer.AnthropicNative ? WireFormat.Anthropic : WireFormat.OpenAi;

    public string PathFor(ModelOffer offer) => Route switch
    {
        InferenceRoute.Messages when offer.AnthropicNative => Route.Path(),
        InferenceRoute.Messages or InferenceRoute.Responses => InferenceRoute.ChatCompletions.Path(),
        _ => Route.Path(),
    };

    private static void WriteWithUsageRequested(JsonElement root, Utf8JsonWriter json)
    {
        json.WriteStartObject();
        foreach (var property in root.EnumerateObject())
        {
            if (!property.NameEquals("stream_options"))
            {
                property.WriteTo(json);
            }
        }

        json.WriteStartObject("stream_options");
        if (root.TryGetProperty("stream_options", out var options) && options.ValueKind == JsonValueKind.Object)
        {
            foreach (var property in options.EnumerateObject())
            {
                if (!property.NameEquals("include_usage"))
                {
                    property.WriteTo(json);
                }
            }
        }

        json.WriteBoolean("include_usage", true);
        json.WriteEndObject();
        json.WriteEndObject();
    }

    private static async Task<(byte[]? Body, int Length)> ReadBodyAsync(PipeReader reader, long limit, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(4096);
        var length = 0;
        while (true)
        {
            var read = await reader.ReadAsync(cancellationToken);
            var data = read.Buffer;
            if (length + data.Length > limit)
            {
                reader.AdvanceTo(data.End);
                ArrayPool<byte>.Shared.Return(buffer);
                return (null, 0);
            }

            if (length + data.Length > buffer.Length)
            {
                var bigger = ArrayPool<byte>.Shared.Rent((int)Math.Max(buffer.Length * 2L, length + data.Length));
                buffer.AsSpan(0, length).CopyTo(bigger);
                ArrayPool<byte>.Shared.Return(buffer);
                buffer = bigger;
            }

            data.CopyTo(buffer.AsSpan(length));
            length += (int)data.Length;
            reader.AdvanceTo(data.End);
            if (read.IsCompleted)
            {
                return (buffer, length);
            }
        }
    }

    public void Dispose()
    {
        _document?.Dispose();
        _document = null;
        _forOpenAiBackend?.Dispose();
        _forOpenAiBackend = null;
        if (_body is not null)
        {
            ArrayPool<byte>.Shared.Return(_body);
            _body = null;
        }
    }
}
