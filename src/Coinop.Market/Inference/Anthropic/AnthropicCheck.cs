using System.Text.Json;

namespace Coinop.Market.Inference.Anthropic;

/// <summary>What an Anthropic Messages request asks of a provider, found while checking it.</summary>
/// <param name="Images">It carries images (in a message or a tool result): only vision models can take it.</param>
/// <param name="Tools">It declares tools.</param>
/// <param name="NeedsNative">Why only a native Anthropic backend can serve it (a document block, a server tool, ...); null when it translates to OpenAI chat.</param>
public sealed record AnthropicShape(bool Images, bool Tools, string? NeedsNative)
{
    public static AnthropicShape Plain { get; } = new(false, false, null);
}

/// <summary>
/// Checks the body of an Anthropic Messages (or count_tokens) request past model, max_tokens and stream: messages
/// and their content blocks, system, tools and tool_choice, sampling parameters, metadata and thinking. Every
/// malformed part is a 400 that names where it is (<c>messages[2].content[0].source</c>); content that is well formed
/// but has no OpenAI chat equivalent (documents, server tools, files) is accepted and marked as needing a native
/// backend. A pure function of the JSON.
/// </summary>
public static class AnthropicCheck
{
    private const int MaxToolName = 128;
    private static readonly string[] ImageTypes = ["image/jpeg", "image/png", "image/gif", "image/webp"];

    public static ApiError? Check(JsonElement root, out AnthropicShape shape)
    {
        shape = AnthropicShape.Plain;
        var images = false;
        string? native = null;
        if (!root.TryGetProperty("messages", out var messages) || messages.ValueKind != JsonValueKind.Array || messages.GetArrayLength() == 0)
        {
            return Invalid("messages: a non-empty array is required");
        }

        var toolNames = new HashSet<string>(StringComparer.Ordinal);
        if ((CheckTools(root, toolNames, ref native) ?? CheckToolChoice(root, toolNames)) is { } toolError)
        {
            return toolError;
        }

        HashSet<string>? pendingToolUses = null;
        var index = 0;
        foreach (var message in messages.EnumerateArray())
        {
            var at = $"messages[{index}]";
            if (message.ValueKind != JsonValueKind.Object
                || !message.TryGetProperty("role", out var role) || role.ValueKind != JsonValueKind.String
                || !(role.ValueEquals("user") || role.ValueEquals("assistant")))
            {
                return Invalid($"{at}: each message needs a role of 'user' or 'assistant'");
            }

            var assistant = role.ValueEquals("assistant");
            if (!message.TryGetProperty("content", out var content) || content.ValueKind is not (JsonValueKind.String or JsonValueKind.Array))
            {
                return Invalid($"{at}.content: a string or an array of content blocks is required");
            }

            var toolUses = assistant ? new HashSet<string>(StringComparer.Ordinal) : null;
            var answered = assistant ? null : new HashSet<string>(StringComparer.Ordinal);
            if (content.ValueKind == JsonValueKind.Array)
            {
                var blockIndex = 0;
                foreach (var block in content.EnumerateArray())
                {
                    var error = CheckBlock(block, $"{at}.content[{blockIndex}]", assistant, toolUses, answered, pendingToolUses, ref images, ref native);
                    if (error is not null)
                    {
                        return error;
                    }

                    blockIndex++;
                }
            }

            // Anthropic's own rule, which OpenAI backends enforce too: tool uses are answered in the very next message.
            if (pendingToolUses is { Count: > 0 })
            {
                pendingToolUses.ExceptWith(answered ?? []);
                if (pendingToolUses.Count > 0)
                {
                    return Invalid($"{at}: tool_use ids were found without tool_result blocks immediately after: {string.Join(", ", pendingToolUses)}. " +
                        "Each tool_use block must have a corresponding tool_result block in the next message");
                }
            }

            pendingToolUses = toolUses;
            index++;
        }

        if (root.TryGetProperty("system", out var system) && system.ValueKind != JsonValueKind.Null && CheckSystem(system) is { } systemError)
        {
            return systemError;
        }

        if (CheckParameters(root) is { } parameterError)
        {
            return parameterError;
        }

        foreach (var name in (ReadOnlySpan<string>)["mcp_servers", "container"])
        {
            if (root.TryGetProperty(name, out var value) && value.ValueKind is not (JsonValueKind.Null or JsonValueKind.Undefined))
            {
                native ??= $"'{name}'";
            }
        }

        shape = new AnthropicShape(images, toolNames.Count > 0, native);
        return null;
    }

    private static ApiError? CheckBlock(
        JsonElement block, string at, bool assistant, HashSet<string>? toolUses, HashSet<string>? answered, HashSet<string>? pending,
        ref bool images, ref string? native)
    {
        if (block.ValueKind != JsonValueKind.Object || !block.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String)
        {
            return Invalid($"{at}: content blocks must be objects with a string 'type'");
        }

        switch (type.GetString())
        {
            case "text":
                return block.TryGetProperty("text", out var text) && text.ValueKind == JsonValueKind.String
                    ? null
                    : Invalid($"{at}.text: a string is required");

            case "image":
                if (assistant)
                {
                    return Invalid($"{at}: image blocks belong in user messages");
                }

                images = true;
                return CheckImage(block, at, ref native);

            case "tool_use":
                if (!assistant)
                {
                    return Invalid($"{at}: tool_use blocks belong in assistant messages");
                }

                if (!NonEmptyString(block, "id", out var id) || !NonEmptyString(block, "name", out _))
                {
                    return Invalid($"{at}: a tool_use block needs a string 'id' and 'name'");
                }

                if (!block.TryGetProperty("input", out var input) || input.ValueKind != JsonValueKind.Object)
                {
                    return Invalid($"{at}.input: an object is required");
                }

                toolUses!.Add(id!);
                return null;

            case "tool_result":
                if (assistant)
                {
                    return Invalid($"{at}: tool_result blocks belong in user messages");
                }

                if (!NonEmptyString(block, "tool_use_id", out var useId))
                {
                    return Invalid($"{at}.tool_use_id: a string is required");
                }

                if (pending is null || !pending.Contains(useId!))
                {
                    return Invalid($"{at}.tool_use_id: '{useId}' answers no tool_use block of the previous assistant message");
                }

                answered!.Add(useId!);
                if (block.TryGetProperty("is_error", out var isError) && isError.ValueKind is not (JsonValueKind.True or JsonValueKind.False or JsonValueKind.Null))
                {
                    return Invalid($"{at}.is_error: must be a boolean");
                }

                return CheckToolResultContent(block, at, ref images, ref native);

            case "thinking":
                if (!assistant || !block.TryGetProperty("thinking", out var thinking) || thinking.ValueKind != JsonValueKind.String)
                {
                    return Invalid($"{at}: a thinking block belongs in an assistant message and needs a string 'thinking'");
                }

                return null;

            case "redacted_thinking":
                return assistant && block.TryGetProperty("data", out var data) && data.ValueKind == JsonValueKind.String
                    ? null
                    : Invalid($"{at}: a redacted_thinking block belongs in an assistant message and needs a string 'data'");

            default:
                // documents, search results, server tool blocks, ...: well formed for a native backend to judge.
                native ??= $"content blocks of type '{type.GetString()}'";
                return null;
        }
    }

    private static ApiError? CheckToolResultContent(JsonElement block, string at, ref bool images, ref string? native)
    {
        if (!block.TryGetProperty("content", out var content) || content.ValueKind is JsonValueKind.Null or JsonValueKind.String)
        {
            return null;
        }

        if (content.ValueKind != JsonValueKind.Array)
        {
            return Invalid($"{at}.content: a string or an array of text and image blocks");
        }

        var i = 0;
        foreach (var part in content.EnumerateArray())
        {
            var partAt = $"{at}.content[{i++}]";
            if (part.ValueKind != JsonValueKind.Object || !part.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String)
            {
                return Invalid($"{partAt}: content blocks must be objects with a string 'type'");
            }

            if (type.ValueEquals("text"))
            {
                if (!part.TryGetProperty("text", out var text) || text.ValueKind != JsonValueKind.String)
                {
                    return Invalid($"{partAt}.text: a string is required");
                }
            }
            else if (type.ValueEquals("image"))
            {
                images = true;
                if (CheckImage(part, partAt, ref native) is { } error)
                {
                    return error;
                }
            }
            else
            {
                native ??= $"tool results holding '{type.GetString()}' blocks";
            }
        }

        return null;
    }

    private static ApiError? CheckImage(JsonElement block, string at, ref string? native)
    {
        if (!block.TryGetProperty("source", out var source) || source.ValueKind != JsonValueKind.Object
            || !source.TryGetProperty("type", out var kind) || kind.ValueKind != JsonValueKind.String)
        {
            return Invalid($"{at}.source: an object with a 'type' of base64 or url is required");
        }

        if (kind.ValueEquals("base64"))
        {
            if (!source.TryGetProperty("media_type", out var media) || media.ValueKind != JsonValueKind.String
                || Array.IndexOf(ImageTypes, media.GetString()) < 0)
            {
                return Invalid($"{at}.source.media_type: one of {string.Join(", ", ImageTypes)}");
            }

            if (!source.TryGetProperty("data", out var data) || data.ValueKind != JsonValueKind.String
                || data.GetString() is not { Length: > 0 } encoded || !System.Buffers.Text.Base64.IsValid(encoded))
            {
                return Invalid($"{at}.source.data: the image as base64 is required");
            }

            return null;
        }

        if (kind.ValueEquals("url"))
        {
            return source.TryGetProperty("url", out var url) && url.ValueKind == JsonValueKind.String
                && Uri.TryCreate(url.GetString(), UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"
                ? null
                : Invalid($"{at}.source.url: an http(s) URL is required");
        }

        if (kind.ValueEquals("file"))
        {
            native ??= "images by file id";
            return null;
        }

        return Invalid($"{at}.source.type: base64, url or file");
    }

    private static ApiError? CheckSystem(JsonElement system)
    {
        if (system.ValueKind == JsonValueKind.String)
        {
            return null;
        }

        if (system.ValueKind != JsonValueKind.Array)
        {
            return Invalid("system: a string or an array of text blocks");
        }

        var i = 0;
        foreach (var block in system.EnumerateArray())
        {
            if (block.ValueKind != JsonValueKind.Object || !block.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String || !type.ValueEquals("text")
                || !block.TryGetProperty("text", out var text) || text.ValueKind != JsonValueKind.String)
            {
                return Invalid($"system[{i}]: a text block {{\"type\":\"text\",\"text\":...}} is required");
            }

            i++;
        }

        return null;
    }

    private static ApiError? CheckTools(JsonElement root, HashSet<string> names, ref string? native)
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

    private static ApiError? CheckToolChoice(JsonElement root, HashSet<string> tools)
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

    private static ApiError? CheckParameters(JsonElement root)
    {
        foreach (var name in (ReadOnlySpan<string>)["temperature", "top_p"])
        {
            if (root.TryGetProperty(name, out var number) && number.ValueKind != JsonValueKind.Null
                && (number.ValueKind != JsonValueKind.Number || !number.TryGetDouble(out var value) || value < 0 || value > 1))
            {
                return Invalid($"{name}: a number from 0 to 1");
            }
        }

        if (root.TryGetProperty("top_k", out var topK) && topK.ValueKind != JsonValueKind.Null
            && (topK.ValueKind != JsonValueKind.Number || !topK.TryGetInt32(out var k) || k < 0))
        {
            return Invalid("top_k: a non-negative integer");
        }

        if (root.TryGetProperty("stop_sequences", out var stops) && stops.ValueKind != JsonValueKind.Null)
        {
            if (stops.ValueKind != JsonValueKind.Array)
            {
                return Invalid("stop_sequences: must be an array of strings");
            }

            foreach (var stop in stops.EnumerateArray())
            {
                if (stop.ValueKind != JsonValueKind.String || stop.GetString()!.Length == 0)
                {
                    return Invalid("stop_sequences: must be an array of non-empty strings");
                }
            }
        }

        if (root.TryGetProperty("metadata", out var metadata) && metadata.ValueKind != JsonValueKind.Null)
        {
            if (metadata.ValueKind != JsonValueKind.Object
                || (metadata.TryGetProperty("user_id", out var user) && user.ValueKind is not (JsonValueKind.String or JsonValueKind.Null)))
            {
                return Invalid("metadata: an object whose user_id is a string");
            }
        }

        if (root.TryGetProperty("thinking", out var thinking) && thinking.ValueKind != JsonValueKind.Null)
        {
            if (thinking.ValueKind != JsonValueKind.Object || !thinking.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String)
            {
                return Invalid("thinking: an object with a 'type' of enabled, disabled or adaptive");
            }

            if (type.ValueEquals("enabled"))
            {
                if (!thinking.TryGetProperty("budget_tokens", out var budget) || budget.ValueKind != JsonValueKind.Number
                    || !budget.TryGetInt64(out var tokens) || tokens < 1)
                {
                    return Invalid("thinking.budget_tokens: a positive integer is required when thinking is enabled");
                }
            }
            else if (!type.ValueEquals("disabled") && !type.ValueEquals("adaptive"))
            {
                return Invalid("thinking.type: enabled, disabled or adaptive");
            }
        }

        return null;
    }

    private static bool NonEmptyString(JsonElement e, string name, out string? value)
    {
        value = e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
        return !string.IsNullOrEmpty(value);
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

    private static ApiError Invalid(string message) => ApiError.InvalidBody(message);
}
