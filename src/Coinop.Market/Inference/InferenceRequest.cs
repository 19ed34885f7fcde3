using System.Buffers;
using System.IO.Pipelines;
using System.Text.Json;
using Coinop.Core.Protocol;
using Microsoft.AspNetCore.Http;

namespace Coinop.Market.Inference;

/// <summary>
/// A consumer's request, read once into a pooled buffer and checked for what the market itself needs (model,
/// stream, limits, the fields a backend cannot do without). Everything else passes to the backend untouched.
/// </summary>
public sealed class InferenceRequest : IDisposable
{
    private const int MaxModelLength = 256;
    private byte[]? _body;
    private JsonDocument? _document;
    private JsonDocument? _forOpenAiBackend;

    private InferenceRequest(InferenceRoute route, byte[] body, int length, JsonDocument document)
    {
        Route = route;
        _body = body;
        BodyLength = length;
        _document = document;
    }

    public InferenceRoute Route { get; }

    public string Model { get; private set; } = "";

    public bool Stream { get; private set; }

    /// <summary>The consumer asked for the usage chunk at the end of a stream (OpenAI <c>stream_options.include_usage</c>).</summary>
    public bool IncludeUsage { get; private set; }

    /// <summary>The output limit the consumer set, if any: the largest of the limits it names (backends differ in which they honour).</summary>
    public long? MaxTokens { get; private set; }

    /// <summary>How many outputs the request asks for (<c>n</c> × the prompts of a prompt array; see <see cref="OutputAsk"/>).</summary>
    public int Outputs { get; private set; } = 1;

    /// <summary>What the reservation for this request is based on.</summary>
    public Coinop.Core.Pricing.ReservationBasis ReservationBasis => new(InputTokenEstimate, Route == InferenceRoute.Embeddings ? 0 : MaxTokens, Outputs);

    public int BodyLength { get; }

    /// <summary>For <c>/v1/messages</c>: false when the request has content a translation to OpenAI chat cannot carry.</summary>
    public bool Translatable { get; private set; } = true;

    public JsonElement Root => _document!.RootElement;

    /// <summary>A conservative estimate of the prompt's tokens (about three bytes a token) for reservations.</summary>
    public long InputTokenEstimate => (BodyLength + 2) / 3;

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

        var request = new InferenceRequest(route, body, length, document);
        var error = route == InferenceRoute.Messages ? request.CheckAnthropic() : request.CheckOpenAi();
        if (error is not null)
        {
            request.Dispose();
            return (null, error);
        }

        return (request, null);
    }

    /// <summary>
    /// The request as the chosen backend gets it. An OpenAI stream always asks for usage so the market can meter
    /// (the usage chunk is stripped again when the consumer did not ask); an Anthropic request goes as it is to
    /// a native backend and is translated to OpenAI chat for any other.
    /// </summary>
    public JsonElement ForBackend(bool anthropicNative)
    {
        if (Route == InferenceRoute.Messages && anthropicNative)
        {
            return Root;
        }

        if (Route != InferenceRoute.Messages && (!Stream || IncludeUsage))
        {
            return Root;
        }

        if (_forOpenAiBackend is null)
        {
            var buffer = new ArrayBufferWriter<byte>(BodyLength + 64);
            using (var json = new Utf8JsonWriter(buffer))
            {
                if (Route == InferenceRoute.Messages)
                {
                    AnthropicTranslation.WriteOpenAiChatRequest(Root, json);
                }
                else
                {
                    WriteWithUsageRequested(Root, json);
                }
            }

            _forOpenAiBackend = JsonDocument.Parse(buffer.WrittenMemory);
        }

        return _forOpenAiBackend.RootElement;
    }

    public WireFormat FormatFor(bool anthropicNative) =>
        Route == InferenceRoute.Messages && anthropicNative ? WireFormat.Anthropic : WireFormat.OpenAi;

    public string PathFor(bool anthropicNative) =>
        Route == InferenceRoute.Messages && !anthropicNative ? InferenceRoute.ChatCompletions.Path() : Route.Path();

    private ApiError? CheckOpenAi()
    {
        var root = Root;
        if (root.ValueKind != JsonValueKind.Object)
        {
            return ApiError.InvalidBody("the body must be a JSON object");
        }

        if (CheckModel(root) is { } modelError)
        {
            return modelError;
        }

        if (Route == InferenceRoute.Embeddings)
        {
            if (!root.TryGetProperty("input", out var input) || input.ValueKind is not (JsonValueKind.String or JsonValueKind.Array))
            {
                return ApiError.InvalidBody("'input' is required: a string or an array");
            }

            return null; // embeddings never stream
        }

        if (Route == InferenceRoute.ChatCompletions)
        {
            if (!root.TryGetProperty("messages", out var messages) || messages.ValueKind != JsonValueKind.Array || messages.GetArrayLength() == 0)
            {
                return ApiError.InvalidBody("'messages' is required: a non-empty array");
            }

            foreach (var message in messages.EnumerateArray())
            {
                if (message.ValueKind != JsonValueKind.Object || !message.TryGetProperty("role", out var role) || role.ValueKind != JsonValueKind.String)
                {
                    return ApiError.InvalidBody("every message must be an object with a string 'role'");
                }
            }
        }
        else if (!root.TryGetProperty("prompt", out var prompt) || prompt.ValueKind is not (JsonValueKind.String or JsonValueKind.Array))
        {
            return ApiError.InvalidBody("'prompt' is required: a string or an array");
        }

        if (CheckStream(root) is { } streamError)
        {
            return streamError;
        }

        if (root.TryGetProperty("stream_options", out var options) && options.ValueKind != JsonValueKind.Null)
        {
            if (options.ValueKind != JsonValueKind.Object)
            {
                return ApiError.InvalidBody("'stream_options' must be an object");
            }

            if (options.TryGetProperty("include_usage", out var includeUsage))
            {
                if (includeUsage.ValueKind is not (JsonValueKind.True or JsonValueKind.False or JsonValueKind.Null))
                {
                    return ApiError.InvalidBody("'stream_options.include_usage' must be a boolean");
                }

                IncludeUsage = includeUsage.ValueKind == JsonValueKind.True;
            }
        }

        if ((CheckMaxTokens(root, "max_completion_tokens", required: false) ?? CheckMaxTokens(root, "max_tokens", required: false)) is { } limitError)
        {
            return limitError;
        }

        if (OutputAsk.Read(root, Route, out var outputs, out var nPredict) is { } askError)
        {
            return askError;
        }

        Outputs = outputs;
        MaxTokens = nPredict is { } predict ? Math.Max(MaxTokens ?? 0, predict) : MaxTokens;
        return null;
    }

    private ApiError? CheckAnthropic()
    {
        var root = Root;
        if (root.ValueKind != JsonValueKind.Object)
        {
            return ApiError.InvalidBody("the body must be a JSON object");
        }

        if ((CheckModel(root) ?? CheckMaxTokens(root, "max_tokens", required: true) ?? CheckStream(root)) is { } error)
        {
            return error;
        }

        if (!root.TryGetProperty("messages", out var messages) || messages.ValueKind != JsonValueKind.Array || messages.GetArrayLength() == 0)
        {
            return ApiError.InvalidBody("messages: a non-empty array is required");
        }

        foreach (var message in messages.EnumerateArray())
        {
            if (message.ValueKind != JsonValueKind.Object
                || !message.TryGetProperty("role", out var role) || role.ValueKind != JsonValueKind.String
                || (role.ValueEquals("user") is false && role.ValueEquals("assistant") is false))
            {
                return ApiError.InvalidBody("messages: each message needs a role of 'user' or 'assistant'");
            }

            if (!message.TryGetProperty("content", out var content) || CheckContent(content) is not null)
            {
                return ApiError.InvalidBody("messages: each message needs content: a string or an array of content blocks");
            }
        }

        if (root.TryGetProperty("system", out var system) && system.ValueKind != JsonValueKind.Null && CheckContent(system) is not null)
        {
            return ApiError.InvalidBody("system: a string or an array of text blocks");
        }

        foreach (var name in (ReadOnlySpan<string>)["temperature", "top_p"])
        {
            if (root.TryGetProperty(name, out var number) && number.ValueKind is not (JsonValueKind.Number or JsonValueKind.Null))
            {
                return ApiError.InvalidBody($"{name}: must be a number");
            }
        }

        if (root.TryGetProperty("stop_sequences", out var stops) && stops.ValueKind != JsonValueKind.Null)
        {
            if (stops.ValueKind != JsonValueKind.Array)
            {
                return ApiError.InvalidBody("stop_sequences: must be an array of strings");
            }

            foreach (var stop in stops.EnumerateArray())
            {
                if (stop.ValueKind != JsonValueKind.String)
                {
                    return ApiError.InvalidBody("stop_sequences: must be an array of strings");
                }
            }
        }

        return null;
    }

    /// <summary>Content is a string or an array of typed blocks; anything but text makes the request untranslatable.</summary>
    private ApiError? CheckContent(JsonElement content)
    {
        if (content.ValueKind == JsonValueKind.String)
        {
            return null;
        }

        if (content.ValueKind != JsonValueKind.Array)
        {
            return ApiError.InvalidBody("content must be a string or an array");
        }

        foreach (var block in content.EnumerateArray())
        {
            if (block.ValueKind != JsonValueKind.Object || !block.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String)
            {
                return ApiError.InvalidBody("content blocks must be objects with a string 'type'");
            }

            if (!type.ValueEquals("text") || !block.TryGetProperty("text", out var text) || text.ValueKind != JsonValueKind.String)
            {
                Translatable = false;
            }
        }

        return null;
    }

    private ApiError? CheckModel(JsonElement root)
    {
        if (!root.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.String)
        {
            return ApiError.InvalidBody("'model' is required: a string");
        }

        var name = model.GetString()!;
        if (name.Length is 0 or > MaxModelLength)
        {
            return ApiError.InvalidBody($"'model' must be 1 to {MaxModelLength} characters");
        }

        Model = name;
        return null;
    }

    private ApiError? CheckStream(JsonElement root)
    {
        if (!root.TryGetProperty("stream", out var stream))
        {
            return null;
        }

        if (stream.ValueKind is not (JsonValueKind.True or JsonValueKind.False or JsonValueKind.Null))
        {
            return ApiError.InvalidBody("'stream' must be a boolean");
        }

        Stream = stream.ValueKind == JsonValueKind.True;
        return null;
    }

    private ApiError? CheckMaxTokens(JsonElement root, string name, bool required)
    {
        if (!root.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return required ? ApiError.InvalidBody($"'{name}' is required: a positive integer") : null;
        }

        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt64(out var tokens) || tokens < 1)
        {
            return ApiError.InvalidBody($"'{name}' must be a positive integer");
        }

        MaxTokens = Math.Max(MaxTokens ?? 0, tokens);
        return null;
    }

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
