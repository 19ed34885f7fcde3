using System.Text.Json;
using static Coinop.Market.Inference.Responses.ResponsesCheck;

namespace Coinop.Market.Inference.Responses;

/// <summary>Checks a Responses request's tools (function tools only, names unique) and its tool_choice.</summary>
internal static class ResponsesToolsCheck
{
    public static ApiError? CheckTools(JsonElement root, HashSet<string> names)
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

    public static ApiError? CheckToolChoice(JsonElement root, HashSet<string> tools)
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
}
