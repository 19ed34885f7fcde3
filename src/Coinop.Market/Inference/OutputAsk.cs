using System.Text.Json;
using Coinop.Core.Pricing;

namespace Coinop.Market.Inference;

/// <summary>
/// How much output an OpenAI-style request asks for beyond <c>max_tokens</c>, so the reservation counts it: <c>n</c>
/// choices × the prompts of a <c>/v1/completions</c> prompt array, and llama.cpp's own output limit <c>n_predict</c>
/// (it wins over <c>max_tokens</c> there, so the larger is reserved). <c>best_of</c> above 1 is refused: the backend
/// generates candidates the market never relays, so it cannot count them.
/// </summary>
public static class OutputAsk
{
    /// <summary>Reads the multipliers; null, or the 400 to answer with.</summary>
    public static ApiError? Read(JsonElement root, InferenceRoute route, out int outputs, out long? nPredict)
    {
        outputs = 1;
        nPredict = null;
        if (route == InferenceRoute.Embeddings)
        {
            return null; // embeddings produce no output tokens; the input estimate covers every input
        }

        if (!TryPositive(root, "n", out var n))
        {
            return ApiError.InvalidBody($"'n' must be an integer from 1 to {InferenceReservation.MaxOutputs}");
        }

        if (!TryPositive(root, "best_of", out var bestOf))
        {
            return ApiError.InvalidBody("'best_of' must be a positive integer");
        }

        if (bestOf is > 1)
        {
            return ApiError.InvalidBody("'best_of' above 1 is not supported: the market bills what it relays, and the other candidates never reach it; use 'n'");
        }

        if (!TryPositive(root, "n_predict", out var predict))
        {
            return ApiError.InvalidBody("'n_predict' must be a positive integer (an unlimited output cannot be reserved)");
        }

        nPredict = predict;
        var prompts = 1L;
        if (route == InferenceRoute.Completions && root.TryGetProperty("prompt", out var prompt) && prompt.ValueKind == JsonValueKind.Array)
        {
            if (PromptCount(prompt) is not { } count)
            {
                return ApiError.InvalidBody("'prompt' must be a string, an array of strings, an array of token ids, or an array of token-id arrays, not empty");
            }

            prompts = count;
        }

        var total = (n ?? 1) * prompts;
        if (total > InferenceReservation.MaxOutputs)
        {
            return ApiError.InvalidBody($"the request asks for {total} outputs ('n' × prompts); at most {InferenceReservation.MaxOutputs} per request");
        }

        outputs = (int)total;
        return null;
    }

    /// <summary>A prompt array's number of prompts: strings or token-id arrays each count; an array of token ids is one prompt.</summary>
    private static long? PromptCount(JsonElement prompt)
    {
        var length = prompt.GetArrayLength();
        if (length == 0)
        {
            return null;
        }

        var first = prompt[0].ValueKind;
        if (first is not (JsonValueKind.String or JsonValueKind.Number or JsonValueKind.Array))
        {
            return null;
        }

        foreach (var item in prompt.EnumerateArray())
        {
            if (item.ValueKind != first)
            {
                return null;
            }
        }

        return first == JsonValueKind.Number ? 1 : length;
    }

    /// <summary>False when the field is present and not a positive integer; absent or null gives null.</summary>
    private static bool TryPositive(JsonElement root, string name, out long? value)
    {
        value = null;
        if (!root.TryGetProperty(name, out var element) || element.ValueKind == JsonValueKind.Null)
        {
            return true;
        }

        if (element.ValueKind != JsonValueKind.Number || !element.TryGetInt64(out var number) || number < 1)
        {
            return false;
        }

        value = number;
        return true;
    }
}
