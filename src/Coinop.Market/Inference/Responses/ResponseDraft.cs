using System.Text;
using System.Text.Json;
using Coinop.Core.Protocol;
using Coinop.Market.Inference.Chat;

namespace Coinop.Market.Inference.Responses;

public enum ResponseItemKind
{
    Reasoning,
    Message,
    FunctionCall,
}

/// <summary>One output item of a response as it is made: reasoning, an assistant message, or a function call.</summary>
public sealed class ResponseItem(ResponseItemKind kind, string id)
{
    public ResponseItemKind Kind { get; } = kind;

    public string Id { get; } = id;

    /// <summary>The reasoning or message text, or the function call's arguments.</summary>
    public StringBuilder Text { get; } = new();

    public string? CallId { get; init; }

    public string? Name { get; init; }

    public bool Done { get; set; }
}

/// <summary>
/// A response being made for one Responses request: its id and time, the request it answers (for the fields a response
/// echoes), its output items, status and usage. <see cref="WriteResponse"/> writes the Response object the API returns
/// (whole, in <c>response.created</c>/<c>response.completed</c> events, and as stored for <c>GET /v1/responses/{id}</c>).
/// </summary>
public sealed class ResponseDraft(string id, long createdAt, JsonElement request, string model)
{
    private int _items;

    public string Id { get; } = id;

    public long CreatedAt { get; } = createdAt;

    public string Model { get; } = model;

    public List<ResponseItem> Output { get; } = [];

    /// <summary><c>in_progress</c> until the end, then <c>completed</c> or <c>incomplete</c>.</summary>
    public string Status { get; private set; } = "in_progress";

    /// <summary>Why it is incomplete (<c>max_output_tokens</c>, <c>content_filter</c>); null otherwise.</summary>
    public string? IncompleteReason { get; private set; }

    public TokenUsage? Usage { get; private set; }

    /// <summary>A new output item with an id unique within this response.</summary>
    public ResponseItem Add(ResponseItemKind kind, string? callId = null, string? name = null)
    {
        var n = _items++;
        var suffix = Id["resp_".Length..];
        var item = new ResponseItem(kind, kind switch
        {
            ResponseItemKind.Reasoning => $"rs_{suffix}_{n}",
            ResponseItemKind.Message => $"msg_{suffix}_{n}",
            _ => $"fc_{suffix}_{n}",
        })
        {
            CallId = kind == ResponseItemKind.FunctionCall ? (string.IsNullOrEmpty(callId) ? $"call_{suffix}_{n}" : callId) : null,
            Name = name,
        };
        Output.Add(item);
        return item;
    }

    /// <summary>The end: status from the backend's finish reason, and usage.</summary>
    public void Complete(string? finishReason, TokenUsage usage)
    {
        (Status, IncompleteReason) = finishReason switch
        {
            "length" => ("incomplete", "max_output_tokens"),
            "content_filter" => ("incomplete", "content_filter"),
            _ => ("completed", (string?)null),
        };
        Usage = usage;
        foreach (var item in Output)
        {
            item.Done = true;
        }
    }

    /// <summary>Fills the output from a whole chat answer.</summary>
    public void Fill(ChatAnswer answer)
    {
        if (answer.Reasoning is { Length: > 0 } reasoning)
        {
            Add(ResponseItemKind.Reasoning).Text.Append(reasoning);
        }

        if (!string.IsNullOrEmpty(answer.Text) || answer.ToolCalls.Count == 0)
        {
            Add(ResponseItemKind.Message).Text.Append(answer.Text);
        }

        foreach (var call in answer.ToolCalls)
        {
            Add(ResponseItemKind.FunctionCall, call.Id, call.Name).Text.Append(call.Arguments);
        }

        Complete(answer.FinishReason, answer.Usage);
    }

    public void WriteResponse(Utf8JsonWriter json)
    {
        json.WriteStartObject();
        json.WriteString("id", Id);
        json.WriteString("object", "response");
        json.WriteNumber("created_at", CreatedAt);
        json.WriteString("status", Status);
        json.WriteBoolean("background", false);
        json.WriteNull("error");
        if (IncompleteReason is null)
        {
            json.WriteNull("incomplete_details");
        }
        else
        {
            json.WriteStartObject("incomplete_details");
            json.WriteString("reason", IncompleteReason);
            json.WriteEndObject();
        }

        Echo("instructions", json);
        Echo("max_output_tokens", json);
        json.WriteString("model", Model);
        json.WriteStartArray("output");
        foreach (var item in Output)
        {
            WriteItem(item, json);
        }

        json.WriteEndArray();
        json.WriteBoolean("parallel_tool_calls", !(request.TryGetProperty("parallel_tool_calls", out var parallel) && parallel.ValueKind == JsonValueKind.False));
        Echo("previous_response_id", json);
        json.WriteStartObject("reasoning");
        json.WriteNull("effort");
        json.WriteNull("summary");
        json.WriteEndObject();
        json.WriteBoolean("store", !(request.TryGetProperty("store", out var store) && store.ValueKind == JsonValueKind.False));
        Echo("temperature", json);
        json.WriteStartObject("text");
        json.WritePropertyName("format");
        if (request.TryGetProperty("text", out var text) && text.ValueKind == JsonValueKind.Object
            && text.TryGetProperty("format", out var format) && format.ValueKind == JsonValueKind.Object)
        {
            format.WriteTo(json);
        }
        else
        {
            json.WriteStartObject();
            json.WriteString("type", "text");
            json.WriteEndObject();
        }

        json.WriteEndObject();
        json.WritePropertyName("tool_choice");
        if (request.TryGetProperty("tool_choice", out var choice) && choice.ValueKind is JsonValueKind.String or JsonValueKind.Object)
        {
            choice.WriteTo(json);
        }
        else
        {
            json.WriteStringValue("auto");
        }

        WriteTools(json);
        Echo("top_p", json);
        json.WriteString("truncation", "disabled");
        WriteUsage(json);
        Echo("user", json);
        json.WritePropertyName("metadata");
        if (request.TryGetProperty("metadata", out var metadata) && metadata.ValueKind == JsonValueKind.Object)
        {
            metadata.WriteTo(json);
        }
        else
        {
            json.WriteStartObject();
            json.WriteEndObject();
        }

        json.WriteEndObject();
    }

    /// <summary>One output item, with its status (<c>in_progress</c> until it is done).</summary>
    public static void WriteItem(ResponseItem item, Utf8JsonWriter json)
    {
        var status = item.Done ? "completed" : "in_progress";
        json.WriteStartObject();
        json.WriteString("id", item.Id);
        switch (item.Kind)
        {
            case ResponseItemKind.Reasoning:
                json.WriteString("type", "reasoning");
                json.WriteStartArray("summary");
                json.WriteEndArray();
                json.WriteStartArray("content");
                if (item.Done)
                {
                    WriteReasoningPart(item.Text.ToString(), json);
                }

                json.WriteEndArray();
                json.WriteString("status", status);
                break;
            case ResponseItemKind.Message:
                json.WriteString("type", "message");
                json.WriteString("status", status);
                json.WriteString("role", "assistant");
                json.WriteStartArray("content");
                if (item.Done)
                {
                    WriteTextPart(item.Text.ToString(), json);
                }

                json.WriteEndArray();
                break;
            default:
                json.WriteString("type", "function_call");
                json.WriteString("status", status);
                json.WriteString("arguments", item.Done ? item.Text.ToString() : "");
                json.WriteString("call_id", item.CallId);
                json.WriteString("name", item.Name);
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

    /// <summary>
    /// The conversation after this response, as chat messages (what a later request's <c>previous_response_id</c>
    /// continues): the earlier conversation, this request's input, and the answer as one assistant message.
    /// </summary>
    public void WriteConversation(ReadOnlySpan<byte> history, ReadOnlySpan<byte> inputMessages, Utf8JsonWriter json)
    {
        json.WriteStartArray();
        CopyElements(history, json);
        CopyElements(inputMessages, json);

        var text = new StringBuilder();
        var calls = new List<ResponseItem>();
        foreach (var item in Output)
        {
            if (item.Kind == ResponseItemKind.Message)
            {
                text.Append(item.Text);
            }
            else if (item.Kind == ResponseItemKind.FunctionCall)
            {
                calls.Add(item);
            }
        }

        json.WriteStartObject();
        json.WriteString("role", "assistant");
        if (text.Length == 0 && calls.Count > 0)
        {
            json.WriteNull("content");
        }
        else
        {
            json.WriteString("content", text.ToString());
        }

        if (calls.Count > 0)
        {
            json.WriteStartArray("tool_calls");
            foreach (var call in calls)
            {
                json.WriteStartObject();
                json.WriteString("id", call.CallId);
                json.WriteString("type", "function");
                json.WriteStartObject("function");
                json.WriteString("name", call.Name);
                json.WriteString("arguments", call.Text.ToString());
                json.WriteEndObject();
                json.WriteEndObject();
            }

            json.WriteEndArray();
        }

        json.WriteEndObject();
        json.WriteEndArray();
    }

    /// <summary>Writes the elements of a JSON array (nothing for an empty span).</summary>
    public static void CopyElements(ReadOnlySpan<byte> array, Utf8JsonWriter json)
    {
        if (array.IsEmpty)
        {
            return;
        }

        var reader = new Utf8JsonReader(array);
        using var document = JsonDocument.ParseValue(ref reader);
        foreach (var message in document.RootElement.EnumerateArray())
        {
            message.WriteTo(json);
        }
    }

    private void WriteTools(Utf8JsonWriter json)
    {
        json.WriteStartArray("tools");
        if (request.TryGetProperty("tools", out var tools) && tools.ValueKind == JsonValueKind.Array)
        {
            foreach (var tool in tools.EnumerateArray())
            {
                json.WriteStartObject();
                json.WriteString("type", "function");
                json.WriteString("name", tool.GetProperty("name").GetString());
                if (tool.TryGetProperty("description", out var description) && description.ValueKind == JsonValueKind.String)
                {
                    json.WriteString("description", description.GetString());
                }
                else
                {
                    json.WriteNull("description");
                }

                json.WritePropertyName("parameters");
                if (tool.TryGetProperty("parameters", out var parameters) && parameters.ValueKind == JsonValueKind.Object)
                {
                    parameters.WriteTo(json);
                }
                else
                {
                    json.WriteNullValue();
                }

                json.WriteBoolean("strict", tool.TryGetProperty("strict", out var strict) && strict.ValueKind == JsonValueKind.True);
                json.WriteEndObject();
            }
        }

        json.WriteEndArray();
    }

    private void WriteUsage(Utf8JsonWriter json)
    {
        if (Usage is not { } usage)
        {
            json.WriteNull("usage");
            return;
        }

        json.WriteStartObject("usage");
        json.WriteNumber("input_tokens", usage.InputTokens);
        json.WriteStartObject("input_tokens_details");
        json.WriteNumber("cached_tokens", 0);
        json.WriteEndObject();
        json.WriteNumber("output_tokens", usage.OutputTokens);
        json.WriteStartObject("output_tokens_details");
        json.WriteNumber("reasoning_tokens", 0);
        json.WriteEndObject();
        json.WriteNumber("total_tokens", usage.InputTokens + usage.OutputTokens);
        json.WriteEndObject();
    }

    /// <summary>A request field as it came, or null.</summary>
    private void Echo(string name, Utf8JsonWriter json)
    {
        if (request.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Undefined)
        {
            json.WritePropertyName(name);
            value.WriteTo(json);
        }
        else
        {
            json.WriteNull(name);
        }
    }
}
