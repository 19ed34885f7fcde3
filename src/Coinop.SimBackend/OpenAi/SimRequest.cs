using System.Text;
using System.Text.Json;
using Coinop.SimBackend.Generation;

namespace Coinop.SimBackend.OpenAi;

/// <summary>The OpenAI endpoints the simulator serves.</summary>
internal enum SimEndpoint
{
    Chat,
    Completion,
    Embedding,
}

/// <summary>A function tool of a chat request: its name and JSON schema (undefined when it has none).</summary>
internal sealed record SimTool(string Name, JsonElement Parameters);

/// <summary>The parts of an OpenAI request the simulator acts on, read from the JSON body.</summary>
internal sealed class SimRequest
{
    public required string Model { get; init; }

    public bool Stream { get; init; }

    public bool IncludeUsage { get; init; }

    public int? MaxTokens { get; init; }

    /// <summary>All prompt text (message contents, the prompt, or the embedding inputs), directives included.</summary>
    public required string Prompt { get; init; }

    public int PromptTokens { get; init; }

    /// <summary>Embeddings: one (seed, token count) per input.</summary>
    public IReadOnlyList<(ulong Seed, int Tokens)> Inputs { get; init; } = [];

    public int? Dimensions { get; init; }

    /// <summary>Chat: the request's function tools (name and JSON schema), in order.</summary>
    public IReadOnlyList<SimTool> Tools { get; init; } = [];

    /// <summary>Chat: how many <c>image_url</c> parts the messages carry.</summary>
    public int ImageCount { get; init; }

    public bool Base64 { get; init; }

    public static SimRequest? TryParse(JsonElement root, SimEndpoint endpoint, out string? error)
    {
        error = null;
        if (root.ValueKind != JsonValueKind.Object)
        {
            error = "the request body must be a JSON object";
            return null;
        }

        if (!root.TryGetProperty("model", out var modelElement) || modelElement.ValueKind != JsonValueKind.String
            || modelElement.GetString() is not { Length: > 0 } model)
        {
            error = "'model' is required and must be a string";
            return null;
        }

        var stream = false;
        if (root.TryGetProperty("stream", out var streamElement) && streamElement.ValueKind != JsonValueKind.Null)
        {
            if (streamElement.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
            {
                error = "'stream' must be a boolean";
                return null;
            }

            stream = streamElement.GetBoolean();
        }

        var includeUsage = root.TryGetProperty("stream_options", out var so) && so.ValueKind == JsonValueKind.Object
            && so.TryGetProperty("include_usage", out var iu) && iu.ValueKind == JsonValueKind.True;

        int? maxTokens = null;
        foreach (var name in (ReadOnlySpan<string>)["max_completion_tokens", "max_tokens"])
        {
            if (root.TryGetProperty(name, out var mt) && mt.ValueKind != JsonValueKind.Null)
            {
                if (mt.ValueKind != JsonValueKind.Number || !mt.TryGetInt32(out var value) || value < 1)
                {
                    error = $"'{name}' must be a positive integer";
                    return null;
                }

                maxTokens ??= value;
            }
        }

        return endpoint switch
        {
            SimEndpoint.Chat => Chat(root, model, stream, includeUsage, maxTokens, out error),
            SimEndpoint.Completion => Completion(root, model, stream, includeUsage, maxTokens, out error),
            _ => Embedding(root, model, out error),
        };
    }

    private static SimRequest? Chat(JsonElement root, string model, bool stream, bool includeUsage, int? maxTokens, out string? error)
    {
        error = null;
        if (!root.TryGetProperty("messages", out var messages) || messages.ValueKind != JsonValueKind.Array || messages.GetArrayLength() == 0)
        {
            error = "'messages' is required and must be a non-empty array";
            return null;
        }

        var text = new StringBuilder();
        var images = 0;
        foreach (var message in messages.EnumerateArray())
        {
            if (message.ValueKind != JsonValueKind.Object)
            {
                error = "each message must be an object";
                return null;
            }

            if (!message.TryGetProperty("content", out var content) || content.ValueKind == JsonValueKind.Null)
            {
                continue;
            }

            if (text.Length > 0)
            {
                text.Append('\n');
            }

            if (content.ValueKind == JsonValueKind.String)
            {
                text.Append(content.GetString());
            }
            else if (content.ValueKind == JsonValueKind.Array)
            {
                foreach (var part in content.EnumerateArray())
                {
                    if (part.ValueKind == JsonValueKind.Object && part.TryGetProperty("text", out var t) && t.ValueKind == JsonValueKind.String)
                    {
                        text.Append(t.GetString());
                    }
                    else if (part.ValueKind == JsonValueKind.Object && part.TryGetProperty("type", out var type) && type.ValueKind == JsonValueKind.String && type.ValueEquals("image_url"))
                    {
                        if (!part.TryGetProperty("image_url", out var image) || image.ValueKind != JsonValueKind.Object
                            || !image.TryGetProperty("url", out var url) || url.ValueKind != JsonValueKind.String
                            || !(url.GetString()!.StartsWith("data:image/", StringComparison.Ordinal) || url.GetString()!.StartsWith("http", StringComparison.Ordinal)))
                        {
                            error = "an image_url part needs image_url.url: a data:image/...;base64 URL or an http(s) URL";
                            return null;
                        }

                        images++;
                    }
                }
            }
            else
            {
                error = "message 'content' must be a string or an array of parts";
                return null;
            }
        }

        var tools = new List<SimTool>();
        if (root.TryGetProperty("tools", out var toolList) && toolList.ValueKind != JsonValueKind.Null)
        {
            if (toolList.ValueKind != JsonValueKind.Array)
            {
                error = "'tools' must be an array";
                return null;
            }

            foreach (var tool in toolList.EnumerateArray())
            {
                if (tool.ValueKind != JsonValueKind.Object || !tool.TryGetProperty("function", out var function) || function.ValueKind != JsonValueKind.Object
                    || !function.TryGetProperty("name", out var name) || name.ValueKind != JsonValueKind.String)
                {
                    error = "each tool must be {\"type\":\"function\",\"function\":{\"name\":...}}";
                    return null;
                }

                tools.Add(new SimTool(name.GetString()!, function.TryGetProperty("parameters", out var parameters) ? parameters.Clone() : default));
            }
        }

        var prompt = text.ToString();
        return new SimRequest
        {
            Model = model,
            Stream = stream,
            IncludeUsage = includeUsage,
            MaxTokens = maxTokens,
            Prompt = prompt,
            PromptTokens = Math.Max(1, SimText.CountTokens(prompt) + images * ImageTokens),
            Tools = tools,
            ImageCount = images,
        };
    }

    /// <summary>What the simulator counts an image as in prompt tokens.</summary>
    public const int ImageTokens = 85;

    private static SimRequest? Completion(JsonElement root, string model, bool stream, bool includeUsage, int? maxTokens, out string? error)
    {
        error = null;
        if (!root.TryGetProperty("prompt", out var promptElement) || JoinText(promptElement) is not { } prompt)
        {
            error = "'prompt' is required and must be a string or an array of strings";
            return null;
        }

        return new SimRequest
        {
            Model = model,
            Stream = stream,
            IncludeUsage = includeUsage,
            MaxTokens = maxTokens,
            Prompt = prompt,
            PromptTokens = Math.Max(1, SimText.CountTokens(prompt)),
        };
    }

    private static SimRequest? Embedding(JsonElement root, string model, out string? error)
    {
        error = null;
        if (!root.TryGetProperty("input", out var input))
        {
            error = "'input' is required";
            return null;
        }

        var items = input.ValueKind == JsonValueKind.Array && input.GetArrayLength() > 0
            && input[0].ValueKind is JsonValueKind.String or JsonValueKind.Array
            ? input.EnumerateArray().ToList()
            : [input];
        var inputs = new List<(ulong, int)>(items.Count);
        var all = new StringBuilder();
        foreach (var item in items)
        {
            string? text = item.ValueKind switch
            {
                JsonValueKind.String => item.GetString(),
                JsonValueKind.Array when item.EnumerateArray().All(e => e.ValueKind == JsonValueKind.Number) => item.GetRawText(),
                _ => null,
            };
            if (text is null)
            {
                error = "'input' must be a string, an array of strings, or token arrays";
                return null;
            }

            var tokens = item.ValueKind == JsonValueKind.Array ? item.GetArrayLength() : SimText.CountTokens(text);
            inputs.Add((SimText.Seed(model, text), tokens));
            all.Append(text).Append('\n');
        }

        int? dimensions = null;
        if (root.TryGetProperty("dimensions", out var dims) && dims.ValueKind != JsonValueKind.Null)
        {
            if (dims.ValueKind != JsonValueKind.Number || !dims.TryGetInt32(out var d) || d < 1 || d > 8192)
            {
                error = "'dimensions' must be an integer from 1 to 8192";
                return null;
            }

            dimensions = d;
        }

        var base64 = false;
        if (root.TryGetProperty("encoding_format", out var format) && format.ValueKind == JsonValueKind.String)
        {
            var name = format.GetString();
            if (name is not ("float" or "base64"))
            {
                error = "'encoding_format' must be float or base64";
                return null;
            }

            base64 = name == "base64";
        }

        return new SimRequest
        {
            Model = model,
            Prompt = all.ToString(),
            Inputs = inputs,
            Dimensions = dimensions,
            Base64 = base64,
            PromptTokens = inputs.Sum(i => i.Item2),
        };
    }

    private static string? JoinText(JsonElement element)
    {
        if (element.ValueKind == JsonValueKind.String)
        {
            return element.GetString();
        }

        if (element.ValueKind != JsonValueKind.Array)
        {
            return null;
        }

        var text = new StringBuilder();
        foreach (var item in element.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.String)
            {
                return null;
            }

            text.Append(item.GetString());
        }

        return text.ToString();
    }
}
