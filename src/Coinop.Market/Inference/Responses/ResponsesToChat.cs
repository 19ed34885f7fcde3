using System.Text;
using System.Text.Json;
using Coinop.Market.Inference.Chat;

namespace Coinop.Market.Inference.Responses;

/// <summary>
/// Rewrites a Responses request (accepted by <see cref="ResponsesCheck"/>) as an OpenAI chat request: instructions
/// become the system message, the stored conversation of <c>previous_response_id</c> comes next, then the input items
/// as chat messages (a run of function calls is one assistant message with <c>tool_calls</c>; each output a
/// <c>tool</c> message). The table is in docs/api.md. Pure functions of the JSON.
/// </summary>
public static class ResponsesToChat
{
    /// <summary>Text put before an image a function call returned (OpenAI tool messages hold text only).</summary>
    public static string ToolImageNote(string? callId) => $"[image from the output of function call {callId}]";

    /// <summary>The chat request. <paramref name="history"/> is the earlier conversation (a JSON array of chat messages) or empty.</summary>
    public static void Write(JsonElement request, ReadOnlySpan<byte> history, ReadOnlySpan<byte> inputMessages, Utf8JsonWriter json)
    {
        json.WriteStartObject();
        json.WriteString("model", request.GetProperty("model").GetString());
        json.WriteStartArray("messages");
        if (request.TryGetProperty("instructions", out var instructions) && instructions.ValueKind == JsonValueKind.String)
        {
            json.WriteStartObject();
            json.WriteString("role", "system");
            json.WriteString("content", instructions.GetString());
            json.WriteEndObject();
        }

        ResponseConversation.CopyElements(history, json);
        ResponseConversation.CopyElements(inputMessages, json);
        json.WriteEndArray();
        if (request.TryGetProperty("max_output_tokens", out var max) && max.ValueKind == JsonValueKind.Number)
        {
            json.WriteNumber("max_tokens", max.GetInt64());
        }

        ChatRequestJson.Copy(request, "temperature", "temperature", json);
        ChatRequestJson.Copy(request, "top_p", "top_p", json);
        ChatRequestJson.Copy(request, "parallel_tool_calls", "parallel_tool_calls", json);
        if ((StringOf(request, "user") ?? StringOf(request, "safety_identifier")) is { } user)
        {
            json.WriteString("user", user);
        }

        WriteTools(request, json);
        WriteFormat(request, json);
        ChatRequestJson.WriteStream(request, json);

        json.WriteEndObject();
    }

    /// <summary>The input as a JSON array of chat messages (what is stored as this turn's part of the conversation).</summary>
    public static void WriteInputMessages(JsonElement request, Utf8JsonWriter json)
    {
        json.WriteStartArray();
        var input = request.GetProperty("input");
        if (input.ValueKind == JsonValueKind.String)
        {
            json.WriteStartObject();
            json.WriteString("role", "user");
            json.WriteString("content", input.GetString());
            json.WriteEndObject();
            json.WriteEndArray();
            return;
        }

        var items = new List<JsonElement>(input.GetArrayLength());
        foreach (var item in input.EnumerateArray())
        {
            items.Add(item);
        }

        var i = 0;
        while (i < items.Count)
        {
            var type = TypeOf(items[i]);
            if (type == "reasoning")
            {
                i++; // earlier reasoning: OpenAI-compatible servers take none back
            }
            else if (type == "function_call" || (type == "message" && items[i].GetProperty("role").ValueEquals("assistant")))
            {
                i = WriteAssistantRun(items, i, json);
            }
            else if (type == "function_call_output")
            {
                i = WriteOutputRun(items, i, json);
            }
            else
            {
                WriteMessage(items[i], json);
                i++;
            }
        }

        json.WriteEndArray();
    }

    /// <summary>One assistant message (if any) and the function calls after it: one chat assistant message with tool_calls.</summary>
    private static int WriteAssistantRun(List<JsonElement> items, int start, Utf8JsonWriter json)
    {
        var i = start;
        string? text = null;
        if (TypeOf(items[i]) == "message")
        {
            text = JoinText(items[i].GetProperty("content"));
            i++;
        }

        var calls = new List<JsonElement>();
        while (i < items.Count && TypeOf(items[i]) is "function_call" or "reasoning")
        {
            if (TypeOf(items[i]) == "function_call")
            {
                calls.Add(items[i]);
            }

            i++;
        }

        json.WriteStartObject();
        json.WriteString("role", "assistant");
        if (text is null && calls.Count > 0)
        {
            json.WriteNull("content");
        }
        else
        {
            json.WriteString("content", text ?? "");
        }

        if (calls.Count > 0)
        {
            json.WriteStartArray("tool_calls");
            foreach (var call in calls)
            {
                json.WriteStartObject();
                json.WriteString("id", call.GetProperty("call_id").GetString());
                json.WriteString("type", "function");
                json.WriteStartObject("function");
                json.WriteString("name", call.GetProperty("name").GetString());
                json.WriteString("arguments", call.GetProperty("arguments").GetString());
                json.WriteEndObject();
                json.WriteEndObject();
            }

            json.WriteEndArray();
        }

        json.WriteEndObject();
        return i;
    }

    /// <summary>Consecutive function call outputs: a tool message each, then one user message with the images they returned.</summary>
    private static int WriteOutputRun(List<JsonElement> items, int start, Utf8JsonWriter json)
    {
        var i = start;
        var withImages = new List<JsonElement>();
        while (i < items.Count && TypeOf(items[i]) == "function_call_output")
        {
            var item = items[i++];
            var output = item.GetProperty("output");
            json.WriteStartObject();
            json.WriteString("role", "tool");
            json.WriteString("tool_call_id", item.GetProperty("call_id").GetString());
            json.WriteString("content", JoinText(output));
            json.WriteEndObject();
            if (HasImage(output))
            {
                withImages.Add(item);
            }
        }

        if (withImages.Count > 0)
        {
            json.WriteStartObject();
            json.WriteString("role", "user");
            json.WriteStartArray("content");
            foreach (var item in withImages)
            {
                foreach (var part in item.GetProperty("output").EnumerateArray())
                {
                    if (part.GetProperty("type").ValueEquals("input_image"))
                    {
                        ChatRequestJson.WriteTextPart(ToolImageNote(item.GetProperty("call_id").GetString()), json);
                        WriteImagePart(part, json);
                    }
                }
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        return i;
    }

    private static void WriteMessage(JsonElement item, Utf8JsonWriter json)
    {
        var role = item.GetProperty("role");
        var content = item.GetProperty("content");
        json.WriteStartObject();
        // "developer" is OpenAI's newer name for system; OpenAI-compatible servers know "system".
        json.WriteString("role", role.ValueEquals("developer") ? "system" : role.GetString());
        if (!HasImage(content))
        {
            json.WriteString("content", JoinText(content));
            json.WriteEndObject();
            return;
        }

        json.WriteStartArray("content");
        foreach (var part in content.EnumerateArray())
        {
            if (part.GetProperty("type").ValueEquals("input_image"))
            {
                WriteImagePart(part, json);
            }
            else if (TextOf(part) is { } text)
            {
                ChatRequestJson.WriteTextPart(text, json);
            }
        }

        json.WriteEndArray();
        json.WriteEndObject();
    }

    private static void WriteTools(JsonElement request, Utf8JsonWriter json)
    {
        if (request.TryGetProperty("tools", out var tools) && tools.ValueKind == JsonValueKind.Array && tools.GetArrayLength() > 0)
        {
            json.WriteStartArray("tools");
            foreach (var tool in tools.EnumerateArray())
            {
                json.WriteStartObject();
                json.WriteString("type", "function");
                json.WriteStartObject("function");
                json.WriteString("name", tool.GetProperty("name").GetString());
                if (StringOf(tool, "description") is { } description)
                {
                    json.WriteString("description", description);
                }

                json.WritePropertyName("parameters");
                if (tool.TryGetProperty("parameters", out var parameters) && parameters.ValueKind == JsonValueKind.Object)
                {
                    parameters.WriteTo(json);
                }
                else
                {
                    json.WriteStartObject();
                    json.WriteString("type", "object");
                    json.WriteStartObject("properties");
                    json.WriteEndObject();
                    json.WriteEndObject();
                }

                if (tool.TryGetProperty("strict", out var strict) && strict.ValueKind is JsonValueKind.True or JsonValueKind.False)
                {
                    json.WriteBoolean("strict", strict.ValueKind == JsonValueKind.True);
                }

                json.WriteEndObject();
                json.WriteEndObject();
            }

            json.WriteEndArray();
        }

        if (!request.TryGetProperty("tool_choice", out var choice) || choice.ValueKind == JsonValueKind.Null)
        {
            return;
        }

        if (choice.ValueKind == JsonValueKind.String)
        {
            json.WriteString("tool_choice", choice.GetString());
            return;
        }

        json.WriteStartObject("tool_choice");
        json.WriteString("type", "function");
        json.WriteStartObject("function");
        json.WriteString("name", choice.GetProperty("name").GetString());
        json.WriteEndObject();
        json.WriteEndObject();
    }

    /// <summary><c>text.format</c> → <c>response_format</c> (json_object, or json_schema with its name, schema and strictness).</summary>
    private static void WriteFormat(JsonElement request, Utf8JsonWriter json)
    {
        if (!request.TryGetProperty("text", out var text) || text.ValueKind != JsonValueKind.Object
            || !text.TryGetProperty("format", out var format) || format.ValueKind != JsonValueKind.Object)
        {
            return;
        }

        var type = format.GetProperty("type");
        if (type.ValueEquals("json_object"))
        {
            json.WriteStartObject("response_format");
            json.WriteString("type", "json_object");
            json.WriteEndObject();
        }
        else if (type.ValueEquals("json_schema"))
        {
            json.WriteStartObject("response_format");
            json.WriteString("type", "json_schema");
            json.WriteStartObject("json_schema");
            json.WriteString("name", format.GetProperty("name").GetString());
            if (StringOf(format, "description") is { } description)
            {
                json.WriteString("description", description);
            }

            json.WritePropertyName("schema");
            format.GetProperty("schema").WriteTo(json);
            if (format.TryGetProperty("strict", out var strict) && strict.ValueKind is JsonValueKind.True or JsonValueKind.False)
            {
                json.WriteBoolean("strict", strict.ValueKind == JsonValueKind.True);
            }

            json.WriteEndObject();
            json.WriteEndObject();
        }
    }

    private static void WriteImagePart(JsonElement part, Utf8JsonWriter json)
    {
        json.WriteStartObject();
        json.WriteString("type", "image_url");
        json.WriteStartObject("image_url");
        json.WriteString("url", part.GetProperty("image_url").GetString());
        if (StringOf(part, "detail") is { } detail)
        {
            json.WriteString("detail", detail);
        }

        json.WriteEndObject();
        json.WriteEndObject();
    }

    private static bool HasImage(JsonElement content)
    {
        if (content.ValueKind != JsonValueKind.Array)
        {
            return false;
        }

        foreach (var part in content.EnumerateArray())
        {
            if (part.GetProperty("type").ValueEquals("input_image"))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>A string content as it is, or the text of its parts joined by newlines.</summary>
    private static string JoinText(JsonElement content)
    {
        if (content.ValueKind == JsonValueKind.String)
        {
            return content.GetString()!;
        }

        var text = new StringBuilder();
        foreach (var part in content.EnumerateArray())
        {
            if (TextOf(part) is { } t)
            {
                if (text.Length > 0)
                {
                    text.Append('\n');
                }

                text.Append(t);
            }
        }

        return text.ToString();
    }

    private static string? TextOf(JsonElement part) => part.GetProperty("type").GetString() switch
    {
        "input_text" or "output_text" => part.GetProperty("text").GetString(),
        "refusal" => part.GetProperty("refusal").GetString(),
        _ => null,
    };

    private static string TypeOf(JsonElement item) => StringOf(item, "type") ?? "message";

    private static string? StringOf(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
}
