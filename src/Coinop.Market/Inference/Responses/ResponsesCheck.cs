using System.Text.Json;

namespace Coinop.Market.Inference.Responses;

/// <summary>What a Responses request asks of a provider and of the market, found while checking it.</summary>
/// <param name="CallIds">The <c>call_id</c>s of the function calls in <c>input</c> (outputs may answer these or the previous response's).</param>
/// <param name="AnsweredCallIds">The <c>call_id</c>s that <c>function_call_output</c> items answer.</param>
public sealed record ResponsesShape(
    bool Images, bool Tools, long? MaxOutputTokens, string? PreviousResponseId, bool Store,
    IReadOnlySet<string> CallIds, IReadOnlyList<string> AnsweredCallIds);

/// <summary>
/// Checks an OpenAI Responses request (<c>POST /v1/responses</c>) past model and stream: input (a string or items:
/// messages, function calls and their outputs, reasoning), instructions, function tools and tool_choice, sampling,
/// max_output_tokens, text format, previous_response_id, store and metadata. Every malformed part, and every feature
/// the market cannot serve through OpenAI chat (hosted tools, file ids, background mode, conversations), is a 400 that
/// names where it is. A pure function of the JSON.
/// </summary>
public static class ResponsesCheck
{
    public static ApiError? Check(JsonElement root, out ResponsesShape shape)
    {
        shape = null!;
        if (!root.TryGetProperty("input", out var input) || input.ValueKind is not (JsonValueKind.String or JsonValueKind.Array))
        {
            return Invalid("input: a string or an array of input items is required");
        }

        var images = false;
        var callIds = new HashSet<string>(StringComparer.Ordinal);
        var answered = new List<string>();
        if (input.ValueKind == JsonValueKind.Array)
        {
            if (input.GetArrayLength() == 0)
            {
                return Invalid("input: at least one item is required");
            }

            var i = 0;
            foreach (var item in input.EnumerateArray())
            {
                if (ResponsesInputCheck.CheckItem(item, $"input[{i++}]", callIds, answered, ref images) is { } itemError)
                {
                    return itemError;
                }
            }
        }

        foreach (var name in (ReadOnlySpan<string>)["instructions", "previous_response_id", "user", "safety_identifier"])
        {
            if (root.TryGetProperty(name, out var value) && value.ValueKind is not (JsonValueKind.String or JsonValueKind.Null))
            {
                return Invalid($"{name}: must be a string");
            }
        }

        var previous = root.TryGetProperty("previous_response_id", out var p) && p.ValueKind == JsonValueKind.String ? p.GetString() : null;
        if (previous is { Length: 0 or > 128 })
        {
            return Invalid("previous_response_id: a response id is required");
        }

        var tools = new HashSet<string>(StringComparer.Ordinal);
        if ((ResponsesToolsCheck.CheckTools(root, tools) ?? ResponsesToolsCheck.CheckToolChoice(root, tools) ?? CheckParameters(root) ?? CheckUnsupported(root)) is { } error)
        {
            return error;
        }

        long? maxOutput = null;
        if (root.TryGetProperty("max_output_tokens", out var max) && max.ValueKind != JsonValueKind.Null)
        {
            if (max.ValueKind != JsonValueKind.Number || !max.TryGetInt64(out var tokens) || tokens < 1)
            {
                return Invalid("max_output_tokens: a positive integer");
            }

            maxOutput = tokens;
        }

        var store = true;
        if (root.TryGetProperty("store", out var storeFlag) && storeFlag.ValueKind != JsonValueKind.Null)
        {
            if (storeFlag.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
            {
                return Invalid("store: must be a boolean");
            }

            store = storeFlag.ValueKind == JsonValueKind.True;
        }

        shape = new ResponsesShape(images, tools.Count > 0, maxOutput, previous, store, callIds, answered);
        return null;
    }

    private static ApiError? CheckParameters(JsonElement root)
    {
        if (root.TryGetProperty("temperature", out var temperature) && temperature.ValueKind != JsonValueKind.Null
            && (temperature.ValueKind != JsonValueKind.Number || !temperature.TryGetDouble(out var t) || t is < 0 or > 2))
        {
            return Invalid("temperature: a number from 0 to 2");
        }

        if (root.TryGetProperty("top_p", out var topP) && topP.ValueKind != JsonValueKind.Null
            && (topP.ValueKind != JsonValueKind.Number || !topP.TryGetDouble(out var p) || p is < 0 or > 1))
        {
            return Invalid("top_p: a number from 0 to 1");
        }

        if (root.TryGetProperty("parallel_tool_calls", out var parallel) && parallel.ValueKind is not (JsonValueKind.True or JsonValueKind.False or JsonValueKind.Null))
        {
            return Invalid("parallel_tool_calls: must be a boolean");
        }

        if (root.TryGetProperty("metadata", out var metadata) && metadata.ValueKind != JsonValueKind.Null)
        {
            if (metadata.ValueKind != JsonValueKind.Object)
            {
                return Invalid("metadata: an object of up to 16 string values");
            }

            var count = 0;
            foreach (var property in metadata.EnumerateObject())
            {
                if (++count > 16 || property.Name.Length > 64 || property.Value.ValueKind != JsonValueKind.String || property.Value.GetString()!.Length > 512)
                {
                    return Invalid("metadata: an object of up to 16 string values (keys up to 64 characters, values up to 512)");
                }
            }
        }

        if (root.TryGetProperty("text", out var text) && text.ValueKind != JsonValueKind.Null)
        {
            if (text.ValueKind != JsonValueKind.Object)
            {
                return Invalid("text: an object");
            }

            if (text.TryGetProperty("format", out var format) && format.ValueKind != JsonValueKind.Null)
            {
                if (format.ValueKind != JsonValueKind.Object || !format.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String)
                {
                    return Invalid("text.format: an object with a 'type' of text, json_object or json_schema");
                }

                if (type.ValueEquals("json_schema"))
                {
                    if (!NonEmpty(format, "name", out _) || !format.TryGetProperty("schema", out var schema) || schema.ValueKind != JsonValueKind.Object)
                    {
                        return Invalid("text.format: a json_schema format needs a 'name' and a 'schema' object");
                    }
                }
                else if (!type.ValueEquals("text") && !type.ValueEquals("json_object"))
                {
                    return Invalid("text.format.type: text, json_object or json_schema");
                }
            }
        }

        return null;
    }

    private static ApiError? CheckUnsupported(JsonElement root)
    {
        if (root.TryGetProperty("background", out var background) && background.ValueKind == JsonValueKind.True)
        {
            return Invalid("background: background responses are not supported; stream instead");
        }

        foreach (var name in (ReadOnlySpan<string>)["conversation", "prompt"])
        {
            if (root.TryGetProperty(name, out var value) && value.ValueKind is not (JsonValueKind.Null or JsonValueKind.Undefined))
            {
                return Invalid($"{name}: not supported; send input (and previous_response_id) instead");
            }
        }

        return null;
    }

    internal static bool NonEmpty(JsonElement e, string name, out string? value)
    {
        value = e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
        return !string.IsNullOrEmpty(value);
    }

    internal static ApiError Invalid(string message) => ApiError.InvalidBody(message);
}
