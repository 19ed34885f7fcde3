using System.Text.Json;
using Coinop.Core.Protocol;

namespace Coinop.Market.Inference.Chat;

/// <summary>A tool call of an OpenAI chat answer: its id (null when the backend gave none), name and arguments as sent.</summary>
/// <param name="Arguments">The arguments text; a few servers send an object, which is kept as its JSON text.</param>
public sealed record ChatToolCall(string? Id, string Name, string Arguments);

/// <summary>
/// A whole OpenAI chat completion reduced to what the Anthropic and Responses translations carry: reasoning, text,
/// tool calls, why it stopped and usage.
/// </summary>
/// <param name="MatchedStop">The stop string the backend hit, when it says (vLLM's <c>stop_reason</c>).</param>
public sealed record ChatAnswer(
    string? Reasoning,
    string? Text,
    IReadOnlyList<ChatToolCall> ToolCalls,
    string? FinishReason,
    string? MatchedStop,
    TokenUsage Usage)
{
    /// <summary>Reads a chat completion; false when the bytes are not one.</summary>
    public static bool TryParse(ReadOnlySpan<byte> json, out ChatAnswer answer)
    {
        answer = null!;
        JsonDocument document;
        try
        {
            var reader = new Utf8JsonReader(json);
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
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("choices", out var choices) || choices.ValueKind != JsonValueKind.Array)
            {
                return false;
            }

            JsonElement message = default;
            JsonElement choice = default;
            if (choices.GetArrayLength() > 0 && choices[0].ValueKind == JsonValueKind.Object)
            {
                choice = choices[0];
                if (choice.TryGetProperty("message", out var m) && m.ValueKind == JsonValueKind.Object)
                {
                    message = m;
                }
            }

            var calls = new List<ChatToolCall>();
            if (message.ValueKind == JsonValueKind.Object && message.TryGetProperty("tool_calls", out var toolCalls) && toolCalls.ValueKind == JsonValueKind.Array)
            {
                foreach (var call in toolCalls.EnumerateArray())
                {
                    var function = ChatJson.Object(call, "function");
                    calls.Add(new ChatToolCall(ChatJson.String(call, "id"), ChatJson.String(function, "name") ?? "", ChatJson.Arguments(function)));
                }
            }

            answer = new ChatAnswer(
                ChatJson.Reasoning(message), ChatJson.String(message, "content"), calls,
                ChatJson.String(choice, "finish_reason"), ChatJson.String(choice, "stop_reason"),
                UsageScanner.FromOpenAiUsage(root));
            return true;
        }
    }
}

/// <summary>Lenient reads of OpenAI chat JSON: a missing or mistyped field is absent, never an exception.</summary>
public static class ChatJson
{
    public static string? String(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    public static JsonElement Object(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Object ? v : default;

    /// <summary><c>reasoning_content</c> (DeepSeek, vLLM, llama.cpp) or <c>reasoning</c> (Ollama, newer vLLM).</summary>
    public static string? Reasoning(JsonElement messageOrDelta) =>
        String(messageOrDelta, "reasoning_content") is { Length: > 0 } content ? content : String(messageOrDelta, "reasoning");

    /// <summary>A function's <c>arguments</c>: the string, or an object's JSON text (some servers send one); "" when absent.</summary>
    public static string Arguments(JsonElement function)
    {
        if (function.ValueKind != JsonValueKind.Object || !function.TryGetProperty("arguments", out var arguments))
        {
            return "";
        }

        return arguments.ValueKind switch
        {
            JsonValueKind.String => arguments.GetString()!,
            JsonValueKind.Object => arguments.GetRawText(),
            _ => "",
        };
    }
}
