using System.Text.Json;
using Coinop.Core.Protocol;
using Coinop.Market.Inference.Chat;

namespace Coinop.Market.Inference.Anthropic;

/// <summary>What a translated answer needs to know of its request.</summary>
/// <param name="StopSequences">The request's <c>stop_sequences</c>, to tell <c>stop_sequence</c> from <c>end_turn</c> when the backend names the stop it hit (vLLM's <c>stop_reason</c>).</param>
public sealed record AnthropicReply(string MessageId, string Model, IReadOnlyList<string> StopSequences)
{
    public static AnthropicReply For(JsonElement request, string messageId, string model)
    {
        List<string>? stops = null;
        if (request.TryGetProperty("stop_sequences", out var array) && array.ValueKind == JsonValueKind.Array)
        {
            stops = [];
            foreach (var stop in array.EnumerateArray())
            {
                stops.Add(stop.GetString()!);
            }
        }

        return new AnthropicReply(messageId, model, stops ?? (IReadOnlyList<string>)[]);
    }

    /// <summary>
    /// Anthropic's stop reason. Tool calls make it <c>tool_use</c> whatever the backend's finish reason says (Ollama and
    /// others report <c>stop</c> with tool calls); only a cut by the length limit wins over them.
    /// </summary>
    public (string Reason, string? Sequence) StopReason(string? finishReason, string? matchedStop, bool hasToolCalls)
    {
        if (finishReason == "length")
        {
            return ("max_tokens", null);
        }

        if (hasToolCalls || finishReason is "tool_calls" or "function_call")
        {
            return ("tool_use", null);
        }

        if (finishReason == "content_filter")
        {
            return ("refusal", null);
        }

        if (matchedStop is not null)
        {
            foreach (var stop in StopSequences)
            {
                if (stop == matchedStop)
                {
                    return ("stop_sequence", stop);
                }
            }
        }

        return ("end_turn", null);
    }
}

/// <summary>
/// A whole OpenAI chat completion rewritten as an Anthropic message: <c>reasoning_content</c> (or <c>reasoning</c>) →
/// a thinking block, content → a text block, each tool call → a tool_use block with its arguments parsed into
/// <c>input</c>, stop reason and usage mapped. A pure function of the bytes.
/// </summary>
public static class ChatToAnthropic
{
    /// <summary>The key <c>input</c> holds a tool call's arguments under when they are not a JSON object.</summary>
    public const string RawArgumentsKey = "_raw_arguments";

    /// <summary>False when the bytes are not a chat completion.</summary>
    public static bool TryWriteMessage(ReadOnlySpan<byte> openAiResponse, AnthropicReply reply, Utf8JsonWriter json, out TokenUsage usage)
    {
        if (!ChatAnswer.TryParse(openAiResponse, out var answer))
        {
            usage = TokenUsage.Zero;
            return false;
        }

        usage = answer.Usage;
        WriteMessage(answer, reply, json);
        return true;
    }

    public static void WriteMessage(ChatAnswer answer, AnthropicReply reply, Utf8JsonWriter json)
    {
        json.WriteStartObject();
        json.WriteString("id", reply.MessageId);
        json.WriteString("type", "message");
        json.WriteString("role", "assistant");
        json.WriteString("model", reply.Model);
        json.WriteStartArray("content");
        if (answer.Reasoning is { Length: > 0 } thinking)
        {
            json.WriteStartObject();
            json.WriteString("type", "thinking");
            json.WriteString("thinking", thinking);
            json.WriteString("signature", "");
            json.WriteEndObject();
        }

        if (!string.IsNullOrEmpty(answer.Text) || answer.ToolCalls.Count == 0)
        {
            json.WriteStartObject();
            json.WriteString("type", "text");
            json.WriteString("text", answer.Text ?? "");
            json.WriteEndObject();
        }

        for (var i = 0; i < answer.ToolCalls.Count; i++)
        {
            var call = answer.ToolCalls[i];
            json.WriteStartObject();
            json.WriteString("type", "tool_use");
            json.WriteString("id", ToolUseId(call.Id, reply.MessageId, i));
            json.WriteString("name", call.Name);
            json.WritePropertyName("input");
            WriteInput(call.Arguments, json);
            json.WriteEndObject();
        }

        json.WriteEndArray();
        var (reason, sequence) = reply.StopReason(answer.FinishReason, answer.MatchedStop, answer.ToolCalls.Count > 0);
        json.WriteString("stop_reason", reason);
        if (sequence is null)
        {
            json.WriteNull("stop_sequence");
        }
        else
        {
            json.WriteString("stop_sequence", sequence);
        }

        WriteUsage(json, answer.Usage);
        json.WriteEndObject();
    }

    public static void WriteUsage(Utf8JsonWriter json, TokenUsage usage)
    {
        json.WriteStartObject("usage");
        json.WriteNumber("input_tokens", usage.InputTokens);
        json.WriteNumber("cache_creation_input_tokens", 0);
        json.WriteNumber("cache_read_input_tokens", 0);
        json.WriteNumber("output_tokens", usage.OutputTokens);
        json.WriteEndObject();
    }

    /// <summary>A tool call's id, or one made from the message id when the backend gave none.</summary>
    public static string ToolUseId(string? backendId, string messageId, int ordinal) =>
        string.IsNullOrEmpty(backendId) ? $"toolu_{messageId}_{ordinal}" : backendId;

    /// <summary>
    /// A tool call's arguments as <c>input</c>: a JSON object as it is; nothing as <c>{}</c>; anything else (a model's
    /// malformed JSON) kept as a string under <see cref="RawArgumentsKey"/> so the consumer sees what came.
    /// </summary>
    public static void WriteInput(string arguments, Utf8JsonWriter json)
    {
        if (string.IsNullOrWhiteSpace(arguments))
        {
            json.WriteStartObject();
            json.WriteEndObject();
            return;
        }

        try
        {
            using var parsed = JsonDocument.Parse(arguments);
            if (parsed.RootElement.ValueKind == JsonValueKind.Object)
            {
                parsed.RootElement.WriteTo(json);
                return;
            }
        }
        catch (JsonException)
        {
            // Not JSON: kept raw below.
        }

        json.WriteStartObject();
        json.WriteString(RawArgumentsKey, arguments);
        json.WriteEndObject();
    }
}
