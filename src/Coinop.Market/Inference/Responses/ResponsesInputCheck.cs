using System.Text.Json;
using static Coinop.Market.Inference.Responses.ResponsesCheck;

namespace Coinop.Market.Inference.Responses;

/// <summary>
/// Checks the items of a Responses request's <c>input</c>: messages and their content parts, function calls and their
/// outputs, reasoning. Notes the call ids seen and answered, and whether images appear.
/// </summary>
internal static class ResponsesInputCheck
{
    private static readonly string[] Roles = ["user", "assistant", "system", "developer"];

    public static ApiError? CheckItem(JsonElement item, string at, HashSet<string> callIds, List<string> answered, ref bool images)
    {
        if (item.ValueKind != JsonValueKind.Object)
        {
            return Invalid($"{at}: an object is required");
        }

        var type = item.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
        if (t.ValueKind is not (JsonValueKind.Undefined or JsonValueKind.String or JsonValueKind.Null))
        {
            return Invalid($"{at}.type: must be a string");
        }

        switch (type)
        {
            case null or "message":
                return CheckMessage(item, at, ref images);

            case "function_call":
                if (!NonEmpty(item, "call_id", out var callId) || !NonEmpty(item, "name", out _)
                    || !item.TryGetProperty("arguments", out var arguments) || arguments.ValueKind != JsonValueKind.String)
                {
                    return Invalid($"{at}: a function_call item needs string 'call_id', 'name' and 'arguments'");
                }

                callIds.Add(callId!);
                return null;

            case "function_call_output":
                if (!NonEmpty(item, "call_id", out var outputId))
                {
                    return Invalid($"{at}.call_id: a string is required");
                }

                answered.Add(outputId!);
                if (!item.TryGetProperty("output", out var output))
                {
                    return Invalid($"{at}.output: a string or an array of content is required");
                }

                if (output.ValueKind == JsonValueKind.String)
                {
                    return null;
                }

                if (output.ValueKind != JsonValueKind.Array)
                {
                    return Invalid($"{at}.output: a string or an array of content is required");
                }

                return CheckContent(output, $"{at}.output", assistant: false, ref images);

            case "reasoning":
                return null; // the model's earlier reasoning: dropped (OpenAI-compatible servers take none back)

            case "item_reference":
                return Invalid($"{at}: item references are not supported: send the items themselves, or use previous_response_id");

            default:
                return Invalid($"{at}.type: '{type}' items cannot be served (only message, function_call, function_call_output and reasoning)");
        }
    }

    private static ApiError? CheckMessage(JsonElement item, string at, ref bool images)
    {
        if (!item.TryGetProperty("role", out var role) || role.ValueKind != JsonValueKind.String || Array.IndexOf(Roles, role.GetString()) < 0)
        {
            return Invalid($"{at}.role: one of user, assistant, system or developer");
        }

        if (!item.TryGetProperty("content", out var content))
        {
            return Invalid($"{at}.content: a string or an array of content is required");
        }

        if (content.ValueKind == JsonValueKind.String)
        {
            return null;
        }

        return content.ValueKind == JsonValueKind.Array
            ? CheckContent(content, $"{at}.content", role.ValueEquals("assistant"), ref images)
            : Invalid($"{at}.content: a string or an array of content is required");
    }

    private static ApiError? CheckContent(JsonElement content, string at, bool assistant, ref bool images)
    {
        var i = 0;
        foreach (var part in content.EnumerateArray())
        {
            var partAt = $"{at}[{i++}]";
            if (part.ValueKind != JsonValueKind.Object || !part.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String)
            {
                return Invalid($"{partAt}: content parts must be objects with a string 'type'");
            }

            switch (type.GetString())
            {
                case "input_text" or "output_text":
                    if (!part.TryGetProperty("text", out var text) || text.ValueKind != JsonValueKind.String)
                    {
                        return Invalid($"{partAt}.text: a string is required");
                    }

                    break;
                case "refusal":
                    if (!part.TryGetProperty("refusal", out var refusal) || refusal.ValueKind != JsonValueKind.String)
                    {
                        return Invalid($"{partAt}.refusal: a string is required");
                    }

                    break;
                case "input_image":
                    if (assistant)
                    {
                        return Invalid($"{partAt}: images belong in user input");
                    }

                    if (part.TryGetProperty("file_id", out var fileId) && fileId.ValueKind == JsonValueKind.String)
                    {
                        return Invalid($"{partAt}.file_id: file ids are not supported: send the image as image_url (a data URL or an http(s) URL)");
                    }

                    if (!part.TryGetProperty("image_url", out var url) || url.ValueKind != JsonValueKind.String || !ValidImageUrl(url.GetString()!))
                    {
                        return Invalid($"{partAt}.image_url: a data:image/...;base64 URL or an http(s) URL is required");
                    }

                    if (part.TryGetProperty("detail", out var detail) && detail.ValueKind != JsonValueKind.Null
                        && !(detail.ValueKind == JsonValueKind.String && (detail.ValueEquals("auto") || detail.ValueEquals("low") || detail.ValueEquals("high"))))
                    {
                        return Invalid($"{partAt}.detail: auto, low or high");
                    }

                    images = true;
                    break;
                case "input_file":
                    return Invalid($"{partAt}: input files cannot be served through chat backends");
                default:
                    return Invalid($"{partAt}.type: input_text, input_image, output_text or refusal");
            }
        }

        return null;
    }

    /// <summary>A data URL of a base64 image, or an http(s) URL.</summary>
    public static bool ValidImageUrl(string url)
    {
        if (url.StartsWith("data:", StringComparison.Ordinal))
        {
            var comma = url.IndexOf(',', StringComparison.Ordinal);
            return url.StartsWith("data:image/", StringComparison.Ordinal) && comma > 0
                && url.AsSpan(0, comma).EndsWith(";base64", StringComparison.Ordinal)
                && System.Buffers.Text.Base64.IsValid(url.AsSpan(comma + 1)) && url.Length > comma + 1;
        }

        return Uri.TryCreate(url, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https";
    }
}
