using System.Buffers;
using System.Text.Json;
using Coinop.Core.Protocol;
using Coinop.Market.Inference.Chat;

namespace Coinop.Market.Inference;

/// <summary>
/// What an OpenAI chunk or answer relayed as it is claims besides its output: a top-level <c>usage</c> (the provider's
/// figures, read for billing but never shown as they are: the consumer sees the usage billed) and an <c>error</c> (a
/// provider failure, never passed on). Found with a byte probe first, so a chunk that claims nothing costs no parse.
/// </summary>
public static class UsageClaim
{
    /// <summary>The facts of one chunk that claims something (see <see cref="Read"/>).</summary>
    /// <param name="Usage">The provider's figures, when a <c>usage</c> object held them (billing checks them against the count).</param>
    /// <param name="HasUsage">A top-level <c>usage</c> that is not <c>null</c>: the chunk cannot go out as it came.</param>
    /// <param name="NoChoices">No <c>choices</c>, or none in it: a chunk with no output (OpenAI's usage chunk looks so).</param>
    /// <param name="Error">The raw JSON of a top-level <c>error</c> that is not <c>null</c>, else null.</param>
    public readonly record struct Facts(TokenUsage? Usage, bool HasUsage, bool NoChoices, string? Error);

    /// <summary>
    /// True when <paramref name="json"/> may hold a <c>usage</c> that is not <c>null</c> or an <c>error</c> key. Quotes inside
    /// JSON strings are escaped, so the patterns match only real keys (or a string value that is exactly <c>error</c>); a
    /// key may also be spelled with escapes (<c>"\u0075sage"</c> is <c>usage</c> to every client), so any <c>\u</c> escape
    /// means a look at the keys too.
    /// </summary>
    public static bool MayClaim(ReadOnlySpan<byte> json) =>
        json.IndexOf("\"error\""u8) >= 0 || HasNonNullUsage(json) || json.IndexOf("\\u"u8) >= 0;

    /// <summary>Reads the top level of one JSON object (well formed: the relay checked it).</summary>
    public static Facts Read(ReadOnlySpan<byte> json)
    {
        TokenUsage? usage = null;
        bool hasUsage = false, anyChoice = false;
        string? error = null;
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 256 });
        reader.Read();
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("usage"u8))
            {
                reader.Read();
                hasUsage |= reader.TokenType != JsonTokenType.Null;
                if (reader.TokenType == JsonTokenType.StartObject)
                {
                    usage = UsageScanner.ReadUsageObject(ref reader);
                }
                else
                {
                    reader.Skip();
                }
            }
            else if (reader.ValueTextEquals("choices"u8))
            {
                reader.Read();
                if (reader.TokenType == JsonTokenType.StartArray)
                {
                    var probe = reader;
                    probe.Read();
                    anyChoice |= probe.TokenType != JsonTokenType.EndArray;
                }

                reader.Skip();
            }
            else if (reader.ValueTextEquals("error"u8))
            {
                reader.Read();
                var start = (int)reader.TokenStartIndex;
                reader.Skip();
                if (reader.TokenType != JsonTokenType.Null)
                {
                    error = System.Text.Encoding.UTF8.GetString(json[start..(int)reader.BytesConsumed]);
                }
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }

        return new Facts(usage, hasUsage, !anyChoice, error);
    }

    /// <summary>
    /// Writes <paramref name="json"/> with the value of every top-level <c>usage</c> replaced: by the market's
    /// <paramref name="billed"/> usage, or by <c>null</c> (what OpenAI streams carry on chunks that are not the usage chunk).
    /// Everything else goes out byte for byte.
    /// </summary>
    public static void Replace(IBufferWriter<byte> output, ReadOnlySpan<byte> json, TokenUsage? billed)
    {
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 256 });
        reader.Read();
        var copied = 0;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var isUsage = reader.ValueTextEquals("usage"u8);
            reader.Read();
            var start = (int)reader.TokenStartIndex;
            reader.Skip();
            if (isUsage)
            {
                output.Write(json[copied..start]);
                WriteUsage(output, billed);
                copied = (int)reader.BytesConsumed;
            }
        }

        output.Write(json[copied..]);
    }

    /// <summary>
    /// The bytes of generated text (as <see cref="GeneratedText"/> counts them) inside the top-level <c>usage</c> values of
    /// <paramref name="json"/>: text that <see cref="Replace"/> takes out, so the consumer never gets it and is not billed for it.
    /// </summary>
    public static long TextIn(ReadOnlySpan<byte> json)
    {
        long bytes = 0;
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 256 });
        reader.Read();
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var isUsage = reader.ValueTextEquals("usage"u8);
            reader.Read();
            if (isUsage && reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray)
            {
                // Text is counted only under a name, so inside an array only its objects (at any depth) can hold some.
                var depth = reader.CurrentDepth;
                var isArray = reader.TokenType == JsonTokenType.StartArray;
                do
                {
                    if (reader.TokenType == JsonTokenType.StartObject)
                    {
                        var start = (int)reader.TokenStartIndex;
                        reader.Skip();
                        bytes += GeneratedText.Bytes(json[start..(int)reader.BytesConsumed]);
                    }
                }
                while (isArray && reader.Read() && reader.CurrentDepth > depth);
            }
            else
            {
                reader.Skip();
            }
        }

        return bytes;
    }

    /// <summary>
    /// The market's own usage chunk, after a stream's output: <c>id</c>, <c>object</c>, <c>created</c>, <c>model</c> and
    /// <c>system_fingerprint</c> as the backend's chunk <paramref name="shape"/> had them (when it did), no choices, and
    /// the usage billed. Nothing else of the provider's goes into it.
    /// </summary>
    public static void WriteUsageChunk(IBufferWriter<byte> output, byte[]? shape, TokenUsage billed)
    {
        using var json = new Utf8JsonWriter(output, TranslationJson.Options);
        json.WriteStartObject();
        if (shape is not null)
        {
            var reader = new Utf8JsonReader(shape, new JsonReaderOptions { MaxDepth = 256 });
            reader.Read();
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var name = reader.ValueTextEquals("id"u8) ? "id" : reader.ValueTextEquals("object"u8) ? "object" : reader.ValueTextEquals("model"u8) ? "model"
                    : reader.ValueTextEquals("system_fingerprint"u8) ? "system_fingerprint" : reader.ValueTextEquals("created"u8) ? "created" : null;
                reader.Read();
                if (name == "created" && reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out var created))
                {
                    json.WriteNumber(name, created);
                }
                else if (name is not null and not "created" && reader.TokenType == JsonTokenType.String)
                {
                    json.WriteString(name, reader.GetString()); // valid Unicode: the relay checked every string
                }

                reader.Skip();
            }
        }

        json.WriteStartArray("choices");
        json.WriteEndArray();
        json.WriteStartObject("usage");
        WriteFigures(json, billed);
        json.WriteEndObject();
        json.WriteEndObject();
    }

    private static void WriteUsage(IBufferWriter<byte> output, TokenUsage? billed)
    {
        if (billed is null)
        {
            output.Write("null"u8);
            return;
        }

        using var json = new Utf8JsonWriter(output);
        json.WriteStartObject();
        WriteFigures(json, billed);
        json.WriteEndObject();
    }

    private static void WriteFigures(Utf8JsonWriter json, TokenUsage billed)
    {
        json.WriteNumber("prompt_tokens", billed.InputTokens);
        json.WriteNumber("completion_tokens", billed.OutputTokens);
        json.WriteNumber("total_tokens", billed.InputTokens + billed.OutputTokens);
    }

    private static bool HasNonNullUsage(ReadOnlySpan<byte> json)
    {
        var key = "\"usage\""u8;
        for (var at = json.IndexOf(key); at >= 0; at = json.IndexOf(key))
        {
            json = json[(at + key.Length)..];
            if (json.TrimStart(" \t\r\n"u8) is [(byte)':', .. var value] && !value.TrimStart(" \t\r\n"u8).StartsWith("null"u8))
            {
                return true;
            }
        }

        return false;
    }
}
