using System.Buffers;
using System.Text.Json;

namespace Coinop.Market.Inference;

/// <summary>
/// Measures the generated text in one JSON document of backend output (a whole response, or one stream event) without
/// materialising it: the unescaped UTF-8 bytes of every string under a name that carries generated text in the OpenAI
/// or Anthropic shapes (<c>content</c>, <c>text</c>, <c>arguments</c>, <c>reasoning_content</c>, <c>reasoning</c>,
/// <c>thinking</c>, <c>partial_json</c>, <c>refusal</c>) and the raw bytes of a tool call's <c>input</c> object. What the
/// market bills as output is counted from this (<see cref="Coinop.Core.Pricing.WireCount"/>), never from the provider's word alone.
/// </summary>
public static class GeneratedText
{
    private const int MinRent = 256;

    public static long Bytes(ReadOnlySpan<byte> json)
    {
        long bytes = 0;
        byte[]? rented = null;
        try
        {
            var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 64 });
            while (reader.Read())
            {
                if (reader.TokenType != JsonTokenType.PropertyName)
                {
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
                    bytes += reader.ValueIsEscaped ? Unescaped(ref reader, ref rented) : reader.ValueSpan.Length;
                }
                else if (input && reader.TokenType == JsonTokenType.StartObject)
                {
                    var start = reader.TokenStartIndex;
                    reader.Skip();
                    bytes += reader.BytesConsumed - start;
                }
            }
        }
        catch (JsonException)
        {
            // What was read before the broken part counts; the relay itself rejects output that is not JSON.
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

    /// <summary>An escaped string counts what it decodes to: <c>\u0041</c> is one byte of text, not six.</summary>
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

        return reader.CopyString(rented);
    }
}
