using System.Text;
using System.Text.Json;

namespace Coinop.Market.Inference.Responses;

public enum ResponseItemKind
{
    Reasoning,
    Message,
    FunctionCall,
}

/// <summary>
/// One output item of a response as it is made: reasoning, an assistant message, or a function call; and its JSON as
/// the Responses API shows it, whole in a Response object or item by item in stream events.
/// </summary>
public sealed class ResponseItem(ResponseItemKind kind, string id)
{
    public ResponseItemKind Kind { get; } = kind;

    public string Id { get; } = id;

    /// <summary>The reasoning or message text, or the function call's arguments.</summary>
    public StringBuilder Text { get; } = new();

    public string? CallId { get; init; }

    public string? Name { get; init; }

    public bool Done { get; set; }

    /// <summary>This item as the API shows it, with its status (<c>in_progress</c> until it is done).</summary>
    public void WriteTo(Utf8JsonWriter json)
    {
        var status = Done ? "completed" : "in_progress";
        json.WriteStartObject();
        json.WriteString("id", Id);
        switch (Kind)
        {
            case ResponseItemKind.Reasoning:
                json.WriteString("type", "reasoning");
                json.WriteStartArray("summary");
                json.WriteEndArray();
                json.WriteStartArray("content");
                if (Done)
                {
                    WriteReasoningPart(Text.ToString(), json);
                }

                json.WriteEndArray();
                json.WriteString("status", status);
                break;
            case ResponseItemKind.Message:
                json.WriteString("type", "message");
                json.WriteString("status", status);
                json.WriteString("role", "assistant");
                json.WriteStartArray("content");
                if (Done)
                {
                    WriteTextPart(Text.ToString(), json);
                }

                json.WriteEndArray();
                break;
            default:
                json.WriteString("type", "function_call");
                json.WriteString("status", status);
                json.WriteString("arguments", Done ? Text.ToString() : "");
                json.WriteString("call_id", CallId);
                json.WriteString("name", Name);
                break;
        }

        json.WriteEndObject();
    }

    public static void WriteTextPart(string text, Utf8JsonWriter json)
    {
        json.WriteStartObject();
        json.WriteString("type", "output_text");
        json.WriteString("text", text);
        json.WriteStartArray("annotations");
        json.WriteEndArray();
        json.WriteStartArray("logprobs");
        json.WriteEndArray();
        json.WriteEndObject();
    }

    public static void WriteReasoningPart(string text, Utf8JsonWriter json)
    {
        json.WriteStartObject();
        json.WriteString("type", "reasoning_text");
        json.WriteString("text", text);
        json.WriteEndObject();
    }
}
