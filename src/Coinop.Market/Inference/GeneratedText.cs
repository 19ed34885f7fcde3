using System.Buffers;
using System.Text.Unicode;
using System.Text.Json;

namespace Coinop.Market.Inference;

/// <summary>
/// Measures the generated text in one JSON document of backend output (a whole response, or one stream event) without
/// materialising it: the unescaped UTF-8 bytes of every string under a name that carries generated text in the OpenAI
/// or Anthropic shapes (<c>content</c>, <c>text</c>, <c>arguments</c>, <c>reasoning_content</c>, <c>reasoning</c>,
/// <c>thinking</c>, <c>partial_json</c>, <c>refusal</c>) and the raw bytes of a tool call's <c>input</c> object. What the
/// market bills as output is counted from this (<see cref="Coinop.Core.Pricing.WireCount"/>), never from the provider's word alone.
/// The same pass tells whether the document is well formed: exactly one JSON object of valid Unicode (UTF-8 throughout, no
/// unpaired surrogate escaped in any string), which is all the market relays or translates.
/// </summary>
public static class GeneratedText
{
    private const int MinRent = 256;

    public static long Bytes(ReadOnlySpan<byte> json) => Bytes(json, out _);

    /// <param name="wellFormed">True when <paramref name="json"/> is exactly one JSON object of valid Unicode.</param>
    public static long Bytes(ReadOnlySpan<byte> json, out bool wellFormed)
    {
        long bytes = 0;
        byte[]? rented = null;
        // Utf8JsonReader leaves the UTF-8 inside strings unchecked (it decodes lazily); one vectorised pass checks it all.
        wellFormed = Utf8.IsValid(json);
        try
        {
            var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 256 });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                wellFormed = false;
                return 0; // text is only ever counted inside an object
            }

            while (reader.Read())
            {
                if (reader.TokenType == JsonTokenType.String && reader.ValueIsEscaped && !DecodesCleanly(ref reader, ref rented))
                {
                    wellFormed = false;
                }

                if (reader.TokenType != JsonTokenType.PropertyName)
                {
                    continue;
                }

                if (reader.ValueIsEscaped && !DecodesCleanly(ref reader, ref rented))
                {
                    wellFormed = false;
                    continue;
                }

                var input = reader.ValueTextEquals("input"u8);
                if (!input && !IsTextName(ref reader))
                {
                    continue;
                }

                if (!reader.Read())
                {
                    break;
                }

                if (reader.TokenType == JsonTokenType.String)
                {
                    if (!reader.ValueIsEscaped)
                    {
                        bytes += reader.ValueSpan.Length;
                    }
                    else if (Unescaped(ref reader, ref rented) is var length and >= 0)
                    {
                        bytes += length;
                    }
                    else
                    {
                        wellFormed = false;
                    }
                }
                else if (input && reader.TokenType == JsonTokenType.StartObject)
                {
                    var start = reader.TokenStartIndex;
                    var depth = reader.CurrentDepth;
                    while (reader.Read() && reader.CurrentDepth > depth)
                    {
                        if (reader.TokenType is JsonTokenType.String or JsonTokenType.PropertyName && reader.ValueIsEscaped && !DecodesCleanly(ref reader, ref rented))
                        {
                            wellFormed = false;
                        }
                    }

                    bytes += reader.BytesConsumed - start;
                }
            }
        }
        catch (JsonException)
        {
            // What was read before the broken part counts; output that is not JSON is not relayed.
            wellFormed = false;
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }

        return bytes;
    }

    private static bool IsTextName(ref Utf8JsonReader reader) =>
        reader.ValueTextEquals("content"u8) || reader.ValueTextEquals("text"u8) || reader.ValueTextEquals("arguments"u8)
        || reader.ValueTextEquals("reasoning_content"u8) || reader.ValueTextEquals("reasoning"u8) || reader.ValueTextEquals("thinking"u8)
        || reader.ValueTextEquals("partial_json"u8) || reader.ValueTextEquals("refusal"u8);

    /// <summary>
    /// Only a <c>\u</c> escape can decode to an unpaired surrogate (the raw bytes are checked apart), so only a string
    /// holding one is decoded to check it.
    /// </summary>
    private static bool DecodesCleanly(ref Utf8JsonReader reader, ref byte[]? rented) =>
        reader.ValueSpan.IndexOf("\\u"u8) < 0 || Unescaped(ref reader, ref rented) >= 0;

    /// <summary>An escaped string counts what it decodes to: <c>\u0041</c> is one byte of text, not six. -1: it decodes to no valid text.</summary>
    private static int Unescaped(ref Utf8JsonReader reader, ref byte[]? rented)
    {
        var length = reader.ValueSpan.Length; // unescaping never grows a string
        if (rented is null || rented.Length < length)
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }

            rented = ArrayPool<byte>.Shared.Rent(Math.Max(length, MinRent));
        }

        try
        {
            return reader.CopyString(rented);
        }
        catch (InvalidOperationException)
        {
            return -1; // an unpaired surrogate (or bytes that are not UTF-8)
        }
    }
}
