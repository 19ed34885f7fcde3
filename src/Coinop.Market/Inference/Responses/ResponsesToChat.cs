using System.Text.Json;
using Coinop.Market.Inference.Chat;

namespace Coinop.Market.Inference.Responses;

/// <summary>
/// Rewrites a Responses request (accepted by <see cref="ResponsesCheck"/>) as an OpenAI chat request: instructions
/// become the system message, the stored conversation of <c>previous_response_id</c> comes next, then the input items
/// as chat messages (<see cref="ResponsesInput"/>); sampling fields, tools, tool choice and text format map to their
/// chat equivalents. The table is in docs/api.md. Pure functions of the JSON.
/// </summary>
public static class ResponsesToChat
{
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

    internal static string? StringOf(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
}
