using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using System.Text.Json;
using Coinop.Core.Protocol;

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

    /// <summary>A <c>message_delta</c>'s body: the stop (<c>null</c>s when none) and the usage billed.</summary>
    public static void WriteMessageDelta(Utf8JsonWriter json, string? stopReason, string? stopSequence, TokenUsage usage)
    {
        json.WriteStartObject("delta");
        WriteStringOrNull(json, "stop_reason", stopReason);
        WriteStringOrNull(json, "stop_sequence", stopSequence);
        json.WriteEndObject();
        json.WriteStartObject("usage");
        json.WriteNumber("input_tokens", usage.InputTokens);
        json.WriteNumber("output_tokens", usage.OutputTokens);
        json.WriteEndObject();
    }

    private static void WriteStringOrNull(Utf8JsonWriter json, string name, string? value)
    {
        if (value is null)
        {
            json.WriteNull(name);
        }
        else
        {
            json.WriteString(name, value);
        }
    }

    public static void WriteError(PipeWriter writer, ApiError error)
    {
        writer.Write("event: error\ndata: "u8);
        error.WriteJson(writer, ErrorShape.Anthropic);
        writer.Write("\n\n"u8);
    }
}
