using System.Text.Json;

namespace Coinop.Market.Inference.Chat;

/// <summary>Pieces of an OpenAI chat request that every translation into chat writes the same way.</summary>
public static class ChatRequestJson
{
    /// <summary>Copies <paramref name="name"/> from the client's request as <paramref name="asName"/> when present and not null.</summary>
    public static void Copy(JsonElement from, string name, string asName, Utf8JsonWriter json)
    {
        if (from.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null)
        {
            json.WritePropertyName(asName);
            value.WriteTo(json);
        }
    }

    /// <summary>A <c>text</c> content part.</summary>
    public static void WriteTextPart(string text, Utf8JsonWriter json)
    {
        json.WriteStartObject();
        json.WriteString("type", "text");
        json.WriteString("text", text);
        json.WriteEndObject();
    }

    /// <summary>
    /// <c>stream</c> as the client asked; a stream also asks for usage in its last chunk, which billing and the
    /// translated end events need.
    /// </summary>
    public static void WriteStream(JsonElement request, Utf8JsonWriter json)
    {
        var stream = request.TryGetProperty("stream", out var s) && s.ValueKind == JsonValueKind.True;
        json.WriteBoolean("stream", stream);
        if (stream)
        {
            json.WriteStartObject("stream_options");
            json.WriteBoolean("include_usage", true);
            json.WriteEndObject();
        }
    }
}
