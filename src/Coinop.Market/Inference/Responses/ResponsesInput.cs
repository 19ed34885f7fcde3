using System.Text;
using System.Text.Json;
using Coinop.Market.Inference.Chat;

namespace Coinop.Market.Inference.Responses;

/// <summary>
/// The input items of a Responses request as chat messages: what is stored as this turn's part of the conversation
/// and what <see cref="ResponsesToChat"/> puts after the earlier conversation. A run of function calls is one
/// assistant message with <c>tool_calls</c>, each output a <c>tool</c> message (images they returned follow in one user
/// message, as chat tool messages hold text only); earlier reasoning is dropped. Pure functions of the JSON.
/// </summary>
public static class ResponsesInput
{
    /// <summary>Text put before an image a function call returned (OpenAI tool messages hold text only).</summary>
    public static string ToolImageNote(string? callId) => $"[image from the output of function call {callId}]";

    /// <summary>The input as a JSON array of chat messages (what is stored as this turn's part of the conversation).</summary>
    public static void WriteMessages(JsonElement request, Utf8JsonWriter json)
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

    private static void WriteImagePart(JsonElement part, Utf8JsonWriter json)
    {
        json.WriteStartObject();
        json.WriteString("type", "image_url");
        json.WriteStartObject("image_url");
        json.WriteString("url", part.GetProperty("image_url").GetString());
        if (ResponsesToChat.StringOf(part, "detail") is { } detail)
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

    private static string TypeOf(JsonElement item) => ResponsesToChat.StringOf(item, "type") ?? "message";
}
