using System.Text.Json;
using Coinop.Core.Protocol;
using Coinop.Market.Inference.Chat;

namespace Coinop.Market.Inference.Responses;

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
            item.WriteTo(json);
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
