using System.Text;
using System.Text.Json;

namespace Coinop.Market.Inference.Responses;

/// <summary>
/// A Responses conversation as stored for <c>previous_response_id</c>: chat messages (the format the request goes to
/// providers in), not Response objects, so continuing it is copying it in front of the next turn's input.
/// </summary>
public static class ResponseConversation
{
    /// <summary>
    /// The conversation after this response, as chat messages (what a later request's <c>previous_response_id</c>
    /// continues): the earlier conversation, this request's input, and the answer as one assistant message.
    /// </summary>
    public static void Write(ResponseDraft draft, ReadOnlySpan<byte> history, ReadOnlySpan<byte> inputMessages, Utf8JsonWriter json)
    {
        json.WriteStartArray();
        CopyElements(history, json);
        CopyElements(inputMessages, json);

        var text = new StringBuilder();
        var calls = new List<ResponseItem>();
        foreach (var item in draft.Output)
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
}
