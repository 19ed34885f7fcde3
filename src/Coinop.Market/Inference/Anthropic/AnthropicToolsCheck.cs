using System.Text.Json;
using static Coinop.Market.Inference.Anthropic.AnthropicCheck;

namespace Coinop.Market.Inference.Anthropic;

/// <summary>Checks an Anthropic request's tools (names unique and well formed, a schema each) and its tool_choice.</summary>
internal static class AnthropicToolsCheck
{
    private const int MaxToolName = 128;

    public static ApiError? CheckTools(JsonElement root, HashSet<string> names, ref string? native)
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
            if (tool.ValueKind != JsonValueKind.Object)
            {
                return Invalid($"{at}: an object is required");
            }

            if (!NonEmptyString(tool, "name", out var name) || name!.Length > MaxToolName || !ValidToolName(name))
            {
                return Invalid($"{at}.name: 1 to {MaxToolName} letters, digits, '_' or '-'");
            }

            if (!names.Add(name))
            {
                return Invalid($"{at}.name: tool names must be unique; '{name}' is repeated");
            }

            if (tool.TryGetProperty("type", out var type) && type.ValueKind != JsonValueKind.Null && !(type.ValueKind == JsonValueKind.String && type.ValueEquals("custom")))
            {
                // bash_..., web_search_..., text_editor_...: tools Anthropic's own servers define.
                if (type.ValueKind != JsonValueKind.String)
                {
                    return Invalid($"{at}.type: a string is required");
                }

                native ??= $"the tool type '{type.GetString()}'";
                continue;
            }

            if (!tool.TryGetProperty("input_schema", out var schema) || schema.ValueKind != JsonValueKind.Object)
            {
                return Invalid($"{at}.input_schema: a JSON schema object is required");
            }

            if (tool.TryGetProperty("description", out var description) && description.ValueKind is not (JsonValueKind.String or JsonValueKind.Null))
            {
                return Invalid($"{at}.description: must be a string");
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

        if (choice.ValueKind != JsonValueKind.Object || !choice.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String)
        {
            return Invalid("tool_choice: an object with a 'type' of auto, any, tool or none is required");
        }

        if (choice.TryGetProperty("disable_parallel_tool_use", out var parallel) && parallel.ValueKind is not (JsonValueKind.True or JsonValueKind.False or JsonValueKind.Null))
        {
            return Invalid("tool_choice.disable_parallel_tool_use: must be a boolean");
        }

        switch (type.GetString())
        {
            case "auto" or "none":
                return null;
            case "any":
                return tools.Count > 0 ? null : Invalid("tool_choice: 'any' needs tools");
            case "tool":
                if (!NonEmptyString(choice, "name", out var name))
                {
                    return Invalid("tool_choice.name: a string is required for type 'tool'");
                }

                return tools.Contains(name!) ? null : Invalid($"tool_choice.name: '{name}' is not one of the tools");
            default:
                return Invalid("tool_choice.type: auto, any, tool or none");
        }
    }

    private static bool ValidToolName(string name)
    {
        foreach (var c in name)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '_' or '-'))
            {
                return false;
            }
        }

        return true;
    }
}
