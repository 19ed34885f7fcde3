using System.Text.Json;
using Coinop.Core.Protocol;

namespace Coinop.Market.Inference;

/// <summary>
/// Reads OpenAI token usage out of backend output. (What an OpenAI chunk claims, <see cref="UsageClaim"/> reads; what a
/// native Anthropic answer or event claims, <see cref="AnthropicClaim"/>.)
/// </summary>
public static class UsageScanner
{
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

    /// <summary>An OpenAI usage object's <c>prompt_tokens</c> and <c>completion_tokens</c> (the reader at its start).</summary>
    internal static TokenUsage ReadUsageObject(ref Utf8JsonReader reader)
    {
        long input = 0, output = 0;
        var inputName = "prompt_tokens"u8;
        var outputName = "completion_tokens"u8;
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
