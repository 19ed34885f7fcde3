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
    private static readonly string[] Roles = ["user", "assistant", "system", "developer"];

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
                if (CheckItem(item, $"input[{i++}]", callIds, answered, ref images) is { } itemError)
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
        if ((CheckTools(root, tools) ?? CheckToolChoice(root, tools) ?? CheckParameters(root) ?? CheckUnsupported(root)) is { } error)
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

    private static ApiError? CheckItem(JsonElement item, string at, HashSet<string> callIds, List<string> answered, ref bool images)
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

    private static ApiError? CheckTools(JsonElement root, HashSet<string> names)
    {
        if (!root.TryGetProperty("tools", out var tools) || tools.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (tools.ValueKind != JsonValueKind.Array)
        {
            return Invalid("tools: an array is required");
        }

        var i = 0;
        foreach (var tool in tools.EnumerateArray())
        {
            var at = $"tools[{i++}]";
            if (tool.ValueKind != JsonValueKind.Object || !tool.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String)
            {
                return Invalid($"{at}: an object with a string 'type' is required");
            }

            if (!type.ValueEquals("function"))
            {
                return Invalid($"{at}.type: only function tools can be served through chat backends ('{type.GetString()}' is a hosted tool)");
            }

            if (!NonEmpty(tool, "name", out var name) || name!.Length > 128)
            {
                return Invalid($"{at}.name: a string of 1 to 128 characters is required");
            }

            if (!names.Add(name))
            {
                return Invalid($"{at}.name: tool names must be unique; '{name}' is repeated");
            }

            if (tool.TryGetProperty("parameters", out var parameters) && parameters.ValueKind is not (JsonValueKind.Object or JsonValueKind.Null))
            {
                return Invalid($"{at}.parameters: a JSON schema object");
            }

            if (tool.TryGetProperty("description", out var description) && description.ValueKind is not (JsonValueKind.String or JsonValueKind.Null))
            {
                return Invalid($"{at}.description: must be a string");
            }

            if (tool.TryGetProperty("strict", out var strict) && strict.ValueKind is not (JsonValueKind.True or JsonValueKind.False or JsonValueKind.Null))
            {
                return Invalid($"{at}.strict: must be a boolean");
            }
        }

        return null;
    }

    private static ApiError? CheckToolChoice(JsonElement root, HashSet<string> tools)
    {
        if (!root.TryGetProperty("tool_choice", out var choice) || choice.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (choice.ValueKind == JsonValueKind.String)
        {
            if (choice.ValueEquals("auto") || choice.ValueEquals("none"))
            {
                return null;
            }

            if (choice.ValueEquals("required"))
            {
                return tools.Count > 0 ? null : Invalid("tool_choice: 'required' needs tools");
            }

            return Invalid("tool_choice: auto, none, required or {\"type\":\"function\",\"name\":...}");
        }

        if (choice.ValueKind != JsonValueKind.Object || !choice.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String || !type.ValueEquals("function"))
        {
            return Invalid("tool_choice: auto, none, required or {\"type\":\"function\",\"name\":...}");
        }

        return NonEmpty(choice, "name", out var name) && tools.Contains(name!)
            ? null
            : Invalid("tool_choice.name: the name of one of the function tools is required");
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

    private static bool NonEmpty(JsonElement e, string name, out string? value)
    {
        value = e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
        return !string.IsNullOrEmpty(value);
    }

    private static ApiError Invalid(string message) => ApiError.InvalidBody(message);
}
