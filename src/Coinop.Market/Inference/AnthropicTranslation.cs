using System.Text;
using System.Text.Json;
using Coinop.Core.Protocol;

namespace Coinop.Market.Inference;

/// <summary>
/// Anthropic Messages ⇄ OpenAI chat, for models whose backend has no native <c>/v1/messages</c>: the request is
/// rewritten as a chat completion and the answer (whole or streamed) rewritten as a message.
/// </summary>
public static class AnthropicTranslation
{
    /// <summary>Writes the OpenAI chat request equivalent to an (already checked, translatable) Anthropic request.</summary>
    public static void WriteOpenAiChatRequest(JsonElement anthropic, Utf8JsonWriter json)
    {
        json.WriteStartObject();
        json.WriteString("model", anthropic.GetProperty("model").GetString());
        json.WriteStartArray("messages");
        if (anthropic.TryGetProperty("system", out var system) && system.ValueKind != JsonValueKind.Null)
        {
            json.WriteStartObject();
            json.WriteString("role", "system");
            json.WriteString("content", TextOf(system));
            json.WriteEndObject();
        }

        foreach (var message in anthropic.GetProperty("messages").EnumerateArray())
        {
            json.WriteStartObject();
            json.WriteString("role", message.GetProperty("role").GetString());
            json.WriteString("content", TextOf(message.GetProperty("content")));
            json.WriteEndObject();
        }

        json.WriteEndArray();
        json.WriteNumber("max_tokens", anthropic.GetProperty("max_tokens").GetInt64());
        CopyIfPresent(anthropic, "temperature", "temperature", json);
        CopyIfPresent(anthropic, "top_p", "top_p", json);
        CopyIfPresent(anthropic, "stop_sequences", "stop", json);
        var stream = anthropic.TryGetProperty("stream", out var s) && s.ValueKind == JsonValueKind.True;
        json.WriteBoolean("stream", stream);
        if (stream)
        {
            json.WriteStartObject("stream_options");
            json.WriteBoolean("include_usage", true);
            json.WriteEndObject();
        }

        json.WriteEndObject();
    }

    /// <summary>Anthropic's stop reason for an OpenAI finish reason.</summary>
    public static string StopReason(string? finishReason) => finishReason switch
    {
        "length" => "max_tokens",
        "tool_calls" or "function_call" => "tool_use",
        "content_filter" => "refusal",
        _ => "end_turn",
    };

    /// <summary>Rewrites a whole OpenAI chat completion as an Anthropic message; false when it is not one.</summary>
    public static bool TryWriteMessage(ReadOnlySpan<byte> openAiResponse, string messageId, string model, Utf8JsonWriter json, out TokenUsage usage)
    {
        usage = TokenUsage.Zero;
        JsonDocument document;
        try
        {
            var reader = new Utf8JsonReader(openAiResponse);
            if (!JsonDocument.TryParseValue(ref reader, out var parsed))
            {
                return false;
            }

            document = parsed;
        }
        catch (JsonException)
        {
            return false;
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object
                || !root.TryGetProperty("choices", out var choices) || choices.ValueKind != JsonValueKind.Array)
            {
                return false;
            }

            string? text = null;
            string? finish = null;
            if (choices.GetArrayLength() > 0 && choices[0].ValueKind == JsonValueKind.Object)
            {
                var choice = choices[0];
                if (choice.TryGetProperty("message", out var message) && message.ValueKind == JsonValueKind.Object
                    && message.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.String)
                {
                    text = content.GetString();
                }

                if (choice.TryGetProperty("finish_reason", out var reason) && reason.ValueKind == JsonValueKind.String)
                {
                    finish = reason.GetString();
                }
            }

            usage = UsageScanner.FromOpenAiUsage(root);
            json.WriteStartObject();
            json.WriteString("id", messageId);
            json.WriteString("type", "message");
            json.WriteString("role", "assistant");
            json.WriteString("model", model);
            json.WriteStartArray("content");
            json.WriteStartObject();
            json.WriteString("type", "text");
            json.WriteString("text", text ?? "");
            json.WriteEndObject();
            json.WriteEndArray();
            json.WriteString("stop_reason", StopReason(finish));
            json.WriteNull("stop_sequence");
            WriteUsage(json, usage);
            json.WriteEndObject();
            return true;
        }
    }

    public static void WriteUsage(Utf8JsonWriter json, TokenUsage usage)
    {
        json.WriteStartObject("usage");
        json.WriteNumber("input_tokens", usage.InputTokens);
        json.WriteNumber("output_tokens", usage.OutputTokens);
        json.WriteEndObject();
    }

    private static string TextOf(JsonElement content)
    {
        if (content.ValueKind == JsonValueKind.String)
        {
            return content.GetString()!;
        }

        var text = new StringBuilder();
        foreach (var block in content.EnumerateArray())
        {
            if (block.TryGetProperty("text", out var t) && t.ValueKind == JsonValueKind.String)
            {
                text.Append(t.GetString());
            }
        }

        return text.ToString();
    }

    private static void CopyIfPresent(JsonElement from, string name, string asName, Utf8JsonWriter json)
    {
        if (from.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null)
        {
            json.WritePropertyName(asName);
            value.WriteTo(json);
        }
    }
}
