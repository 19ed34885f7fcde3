using System.Text;
using System.Text.Json;
using Coinop.Market.Inference.Chat;

namespace Coinop.Market.Inference.Anthropic;

/// <summary>What the OpenAI chat request may carry for the chosen backend.</summary>
/// <param name="TopK">The server takes <c>top_k</c> (vLLM, llama.cpp, LM Studio, Ollama ignore or use it; OpenAI itself refuses it).</param>
public readonly record struct ChatBackend(bool TopK)
{
    public static ChatBackend For(Coinop.Core.Protocol.ModelOffer offer) => new(TopK: offer.Backend != "openai");
}

/// <summary>
/// Writes the OpenAI chat request equivalent to an Anthropic Messages request that <see cref="AnthropicCheck"/>
/// accepted as translatable. The table of what maps to what, and what is dropped, is in docs/api.md. A pure function
/// of the JSON; writes straight from the parsed request without building objects.
/// </summary>
public static class AnthropicToChat
{
    /// <summary>Text put before an image that came back in a tool result (OpenAI tool messages hold text only).</summary>
    public static string ToolImageNote(string? toolUseId) => $"[image from the result of tool call {toolUseId}]";

    /// <summary>Prefix of the tool message of a tool result marked <c>is_error</c> (OpenAI has no such flag).</summary>
    public const string ToolErrorPrefix = "Error: ";

    public static void Write(JsonElement anthropic, ChatBackend backend, Utf8JsonWriter json)
    {
        json.WriteStartObject();
        json.WriteString("model", anthropic.GetProperty("model").GetString());
        WriteMessages(anthropic, json);
        if (anthropic.TryGetProperty("max_tokens", out var maxTokens) && maxTokens.ValueKind == JsonValueKind.Number)
        {
            json.WriteNumber("max_tokens", maxTokens.GetInt64());
        }

        ChatRequestJson.Copy(anthropic, "temperature", "temperature", json);
        ChatRequestJson.Copy(anthropic, "top_p", "top_p", json);
        if (backend.TopK)
        {
            ChatRequestJson.Copy(anthropic, "top_k", "top_k", json);
        }

        ChatRequestJson.Copy(anthropic, "stop_sequences", "stop", json);
        if (anthropic.TryGetProperty("metadata", out var metadata) && metadata.ValueKind == JsonValueKind.Object
            && metadata.TryGetProperty("user_id", out var user) && user.ValueKind == JsonValueKind.String)
        {
            json.WriteString("user", user.GetString());
        }

        WriteTools(anthropic, json);
        ChatRequestJson.WriteStream(anthropic, json);

        json.WriteEndObject();
    }

    /// <summary>The <c>messages</c> array alone (count_tokens measures it the same way).</summary>
    public static void WriteMessages(JsonElement anthropic, Utf8JsonWriter json)
    {
        json.WriteStartArray("messages");
        if (anthropic.TryGetProperty("system", out var system) && system.ValueKind is JsonValueKind.String or JsonValueKind.Array)
        {
            json.WriteStartObject();
            json.WriteString("role", "system");
            json.WriteString("content", JoinText(system, "\n\n"));
            json.WriteEndObject();
        }

        foreach (var message in anthropic.GetProperty("messages").EnumerateArray())
        {
            var content = message.GetProperty("content");
            if (message.GetProperty("role").ValueEquals("assistant"))
            {
                WriteAssistant(content, json);
            }
            else
            {
                WriteUser(content, json);
            }
        }

        json.WriteEndArray();
    }

    /// <summary><c>tools</c>, <c>tool_choice</c> and <c>parallel_tool_calls</c>.</summary>
    public static void WriteTools(JsonElement anthropic, Utf8JsonWriter json)
    {
        if (anthropic.TryGetProperty("tools", out var tools) && tools.ValueKind == JsonValueKind.Array && tools.GetArrayLength() > 0)
        {
            json.WriteStartArray("tools");
            foreach (var tool in tools.EnumerateArray())
            {
                if (!tool.TryGetProperty("input_schema", out var schema))
                {
                    continue; // an Anthropic-defined tool (count_tokens sees them; chat never gets them)
                }

                json.WriteStartObject();
                json.WriteString("type", "function");
                json.WriteStartObject("function");
                json.WriteString("name", tool.GetProperty("name").GetString());
                if (tool.TryGetProperty("description", out var description) && description.ValueKind == JsonValueKind.String)
                {
                    json.WriteString("description", description.GetString());
                }

                json.WritePropertyName("parameters");
                schema.WriteTo(json);
                json.WriteEndObject();
                json.WriteEndObject();
            }

            json.WriteEndArray();
        }

        if (!anthropic.TryGetProperty("tool_choice", out var choice) || choice.ValueKind != JsonValueKind.Object)
        {
            return;
        }

        var type = choice.GetProperty("type");
        if (type.ValueEquals("auto"))
        {
            json.WriteString("tool_choice", "auto");
        }
        else if (type.ValueEquals("any"))
        {
            json.WriteString("tool_choice", "required");
        }
        else if (type.ValueEquals("none"))
        {
            json.WriteString("tool_choice", "none");
        }
        else
        {
            json.WriteStartObject("tool_choice");
            json.WriteString("type", "function");
            json.WriteStartObject("function");
            json.WriteString("name", choice.GetProperty("name").GetString());
            json.WriteEndObject();
            json.WriteEndObject();
        }

        if (choice.TryGetProperty("disable_parallel_tool_use", out var parallel) && parallel.ValueKind == JsonValueKind.True)
        {
            json.WriteBoolean("parallel_tool_calls", false);
        }
    }

    private static void WriteAssistant(JsonElement content, Utf8JsonWriter json)
    {
        json.WriteStartObject();
        json.WriteString("role", "assistant");
        if (content.ValueKind == JsonValueKind.String)
        {
            json.WriteString("content", content.GetString());
            json.WriteEndObject();
            return;
        }

        // Thinking blocks are dropped: OpenAI-compatible servers take no reasoning in the history.
        var text = JoinText(content, "\n");
        var hasToolUse = false;
        foreach (var block in content.EnumerateArray())
        {
            hasToolUse |= block.GetProperty("type").ValueEquals("tool_use");
        }

        if (text.Length > 0 || !hasToolUse)
        {
            json.WriteString("content", text);
        }
        else
        {
            json.WriteNull("content");
        }

        if (hasToolUse)
        {
            json.WriteStartArray("tool_calls");
            foreach (var block in content.EnumerateArray())
            {
                if (!block.GetProperty("type").ValueEquals("tool_use"))
                {
                    continue;
                }

                json.WriteStartObject();
                json.WriteString("id", block.GetProperty("id").GetString());
                json.WriteString("type", "function");
                json.WriteStartObject("function");
                json.WriteString("name", block.GetProperty("name").GetString());
                json.WriteString("arguments", block.GetProperty("input").GetRawText());
                json.WriteEndObject();
                json.WriteEndObject();
            }

            json.WriteEndArray();
        }

        json.WriteEndObject();
    }

    /// <summary>
    /// A user turn: its tool results first, each as a <c>tool</c> message in order (they must follow the assistant's
    /// tool calls directly), then one user message with its text and images and the images tool results returned.
    /// </summary>
    private static void WriteUser(JsonElement content, Utf8JsonWriter json)
    {
        if (content.ValueKind == JsonValueKind.String)
        {
            json.WriteStartObject();
            json.WriteString("role", "user");
            json.WriteString("content", content.GetString());
            json.WriteEndObject();
            return;
        }

        var hasToolResult = false;
        var hasImage = false;
        var hasOther = false;
        foreach (var block in content.EnumerateArray())
        {
            var type = block.GetProperty("type");
            if (type.ValueEquals("tool_result"))
            {
                hasToolResult = true;
                hasImage |= ToolResultHasImage(block);
                WriteToolMessage(block, json);
            }
            else
            {
                hasOther = true;
                hasImage |= type.ValueEquals("image") && IsChatImage(block);
            }
        }

        if (hasToolResult && !hasOther && !hasImage)
        {
            return;
        }

        json.WriteStartObject();
        json.WriteString("role", "user");
        if (!hasImage)
        {
            json.WriteString("content", JoinText(content, "\n"));
            json.WriteEndObject();
            return;
        }

        json.WriteStartArray("content");
        foreach (var block in content.EnumerateArray())
        {
            var type = block.GetProperty("type");
            if (type.ValueEquals("text"))
            {
                ChatRequestJson.WriteTextPart(block.GetProperty("text").GetString()!, json);
            }
            else if (type.ValueEquals("image") && IsChatImage(block))
            {
                WriteImagePart(block, json);
            }
        }

        foreach (var block in content.EnumerateArray())
        {
            if (!block.GetProperty("type").ValueEquals("tool_result") || !block.TryGetProperty("content", out var parts) || parts.ValueKind != JsonValueKind.Array)
            {
                continue;
            }

            foreach (var part in parts.EnumerateArray())
            {
                if (part.GetProperty("type").ValueEquals("image") && IsChatImage(part))
                {
                    ChatRequestJson.WriteTextPart(ToolImageNote(block.GetProperty("tool_use_id").GetString()), json);
                    WriteImagePart(part, json);
                }
            }
        }

        json.WriteEndArray();
        json.WriteEndObject();
    }

    private static void WriteToolMessage(JsonElement block, Utf8JsonWriter json)
    {
        json.WriteStartObject();
        json.WriteString("role", "tool");
        json.WriteString("tool_call_id", block.GetProperty("tool_use_id").GetString());
        var text = block.TryGetProperty("content", out var content) && content.ValueKind is JsonValueKind.String or JsonValueKind.Array
            ? JoinText(content, "\n")
            : "";
        if (block.TryGetProperty("is_error", out var isError) && isError.ValueKind == JsonValueKind.True)
        {
            text = ToolErrorPrefix + text;
        }

        json.WriteString("content", text);
        json.WriteEndObject();
    }

    private static bool ToolResultHasImage(JsonElement block)
    {
        if (!block.TryGetProperty("content", out var content) || content.ValueKind != JsonValueKind.Array)
        {
            return false;
        }

        foreach (var part in content.EnumerateArray())
        {
            if (part.GetProperty("type").ValueEquals("image") && IsChatImage(part))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>An image chat can carry: base64 or a URL (not a file id, which only native backends resolve).</summary>
    private static bool IsChatImage(JsonElement image) =>
        image.GetProperty("source").GetProperty("type") is { ValueKind: JsonValueKind.String } kind && (kind.ValueEquals("base64") || kind.ValueEquals("url"));

    /// <summary>An Anthropic image as an OpenAI <c>image_url</c> part: base64 becomes a data URL, a URL stays as it is.</summary>
    private static void WriteImagePart(JsonElement image, Utf8JsonWriter json)
    {
        var source = image.GetProperty("source");
        json.WriteStartObject();
        json.WriteString("type", "image_url");
        json.WriteStartObject("image_url");
        json.WriteString("url", ImageUrl(source));
        json.WriteEndObject();
        json.WriteEndObject();
    }

    public static string ImageUrl(JsonElement source) => source.GetProperty("type").ValueEquals("url")
        ? source.GetProperty("url").GetString()!
        : string.Concat("data:", source.GetProperty("media_type").GetString(), ";base64,", source.GetProperty("data").GetString());

    /// <summary>A string as it is, or the text blocks of an array joined by <paramref name="separator"/> (other blocks skipped).</summary>
    public static string JoinText(JsonElement content, string separator)
    {
        if (content.ValueKind == JsonValueKind.String)
        {
            return content.GetString()!;
        }

        string? single = null;
        StringBuilder? text = null;
        foreach (var block in content.EnumerateArray())
        {
            if (!block.TryGetProperty("type", out var type) || !type.ValueEquals("text") || !block.TryGetProperty("text", out var t) || t.ValueKind != JsonValueKind.String)
            {
                continue;
            }

            if (single is null)
            {
                single = t.GetString()!;
            }
            else
            {
                text ??= new StringBuilder(single);
                text.Append(separator).Append(t.GetString());
            }
        }

        return text?.ToString() ?? single ?? "";
    }
}
