using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using System.Text.Json;

namespace Coinop.Market.Inference;

/// <summary>Writes Anthropic stream events: <c>event: NAME</c>, then <c>data: {"type":NAME,...}</c>.</summary>
public static class AnthropicEvents
{
    public static void Write(PipeWriter writer, string name, Action<Utf8JsonWriter> body)
    {
        writer.Write("event: "u8);
        writer.Write(Encoding.UTF8.GetBytes(name));
        writer.Write("\ndata: "u8);
        using (var json = new Utf8JsonWriter(writer))
        {
            json.WriteStartObject();
            json.WriteString("type", name);
            body(json);
            json.WriteEndObject();
        }

        writer.Write("\n\n"u8);
    }

    public static void WriteError(PipeWriter writer, ApiError error)
    {
        writer.Write("event: error\ndata: "u8);
        error.WriteJson(writer, ErrorShape.Anthropic);
        writer.Write("\n\n"u8);
    }
}
