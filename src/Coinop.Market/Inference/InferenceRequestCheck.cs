using System.Text.Json;
using Coinop.Market.Inference.Anthropic;
using Coinop.Market.Inference.Responses;

namespace Coinop.Market.Inference;

/// <summary>
/// Checks a consumer's request body for what the market itself needs (model, stream, limits, the fields a backend
/// cannot do without) and keeps what it found; the Anthropic and Responses bodies are checked further by
/// <see cref="AnthropicCheck"/> and <see cref="ResponsesCheck"/>. A pure function of the JSON.
/// </summary>
internal sealed class InferenceRequestCheck(InferenceRoute route)
{
    private const int MaxModelLength = 256;
    private readonly InferenceRoute _route = route;

    public string Model { get; private set; } = "";

    public bool Stream { get; private set; }

    public bool IncludeUsage { get; private set; }

    public long? MaxTokens { get; private set; }

    public int Outputs { get; private set; } = 1;

    public bool HasImages { get; private set; }

    public AnthropicShape? Anthropic { get; private set; }

    public ResponsesShape? Responses { get; private set; }

    /// <summary>Checks <paramref name="root"/>; null when the market can take it, else the error to answer with.</summary>
    public ApiError? Check(JsonElement root) => _route switch
    {
        InferenceRoute.Messages => CheckAnthropic(root),
        InferenceRoute.Responses => CheckResponses(root),
        _ => CheckOpenAi(root),
    };

    private ApiError? CheckOpenAi(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            return ApiError.InvalidBody("the body must be a JSON object");
        }

        if (CheckModel(root) is { } modelError)
        {
            return modelError;
        }

        if (_route == InferenceRoute.Embeddings)
        {
            if (!root.TryGetProperty("input", out var input) || input.ValueKind is not (JsonValueKind.String or JsonValueKind.Array))
            {
                return ApiError.InvalidBody("'input' is required: a string or an array");
            }

            return null; // embeddings never stream
        }

        if (_route == InferenceRoute.ChatCompletions)
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

                HasImages |= HasImageParts(message);
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

        if (OutputAsk.Read(root, _route, out var outputs, out var nPredict) is { } askError)
        {
            return askError;
        }

        Outputs = outputs;
        MaxTokens = nPredict is { } predict ? Math.Max(MaxTokens ?? 0, predict) : MaxTokens;
        return null;
    }

    private ApiError? CheckAnthropic(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            return ApiError.InvalidBody("the body must be a JSON object");
        }

        if ((CheckModel(root) ?? CheckMaxTokens(root, "max_tokens", required: true) ?? CheckStream(root)) is { } error)
        {
            return error;
        }

        if (AnthropicCheck.Check(root, out var shape) is { } bodyError)
        {
            return bodyError;
        }

        Anthropic = shape;
        HasImages = shape.Images;
        return null;
    }

    private ApiError? CheckResponses(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            return ApiError.InvalidBody("the body must be a JSON object");
        }

        if ((CheckModel(root) ?? CheckStream(root)) is { } error)
        {
            return error;
        }

        if (ResponsesCheck.Check(root, out var shape) is { } bodyError)
        {
            return bodyError;
        }

        Responses = shape;
        HasImages = shape.Images;
        MaxTokens = shape.MaxOutputTokens;
        return null;
    }

    /// <summary>An OpenAI chat message with an <c>image_url</c> part.</summary>
    private static bool HasImageParts(JsonElement message)
    {
        if (!message.TryGetProperty("content", out var content) || content.ValueKind != JsonValueKind.Array)
        {
            return false;
        }

        foreach (var part in content.EnumerateArray())
        {
            if (part.ValueKind == JsonValueKind.Object && part.TryGetProperty("type", out var type) && type.ValueKind == JsonValueKind.String && type.ValueEquals("image_url"))
            {
                return true;
            }
        }

        return false;
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
}
