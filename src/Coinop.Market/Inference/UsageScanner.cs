using System.Text.Json;
using Coinop.Core.Protocol;

namespace Coinop.Market.Inference;

/// <summary>
/// Reads token usage out of backend output without materialising it: a forward-only scan of the top level
/// that skips everything but <c>usage</c>. (What an OpenAI chunk claims besides, <see cref="UsageClaim"/> reads.)
/// </summary>
public static class UsageScanner
{
    /// <summary>OpenAI (<c>prompt_tokens</c>, <c>completion_tokens</c>) or Anthropic (<c>input_tokens</c>, <c>output_tokens</c>) usage at the top level.</summary>
    public static bool TryRead(ReadOnlySpan<byte> json, bool anthropic, out TokenUsage usage)
    {
        usage = TokenUsage.Zero;
        var found = false;
        try
        {
            var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 256 });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return false;
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("usage"u8))
                {
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.StartObject)
                    {
                        usage = ReadUsageObject(ref reader, anthropic);
                        found = true;
                    }
                    else
                    {
                        reader.Skip();
                    }
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }
        }
        catch (JsonException)
        {
            return false;
        }

        return found;
    }

    public static TokenUsage FromOpenAiUsage(JsonElement root)
    {
        if (!root.TryGetProperty("usage", out var usage) || usage.ValueKind != JsonValueKind.Object)
        {
            return TokenUsage.Zero;
        }

        return new TokenUsage(Int(usage, "prompt_tokens"), Int(usage, "completion_tokens"));
    }

    private static long Int(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var n) ? n : 0;

    internal static TokenUsage ReadUsageObject(ref Utf8JsonReader reader, bool anthropic)
    {
        long input = 0, output = 0;
        var inputName = anthropic ? "input_tokens"u8 : "prompt_tokens"u8;
        var outputName = anthropic ? "output_tokens"u8 : "completion_tokens"u8;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var isInput = reader.ValueTextEquals(inputName);
            var isOutput = !isInput && reader.ValueTextEquals(outputName);
            reader.Read();
            if (reader.TokenType == JsonTokenType.Number && (isInput || isOutput) && reader.TryGetInt64(out var n))
            {
                if (isInput)
                {
                    input = n;
                }
                else
                {
                    output = n;
                }
            }
            else
            {
                reader.Skip();
            }
        }

        return new TokenUsage(input, output);
    }
}
