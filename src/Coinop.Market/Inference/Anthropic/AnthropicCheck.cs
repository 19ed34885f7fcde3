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
        if ((AnthropicToolsCheck.CheckTools(root, toolNames, ref native) ?? AnthropicToolsCheck.CheckToolChoice(root, toolNames)) is { } toolError)
        {
            return toolError;
        }

        if (AnthropicMessagesCheck.Check(messages, ref images, ref native) is { } messageError)
        {
            return messageError;
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

    internal static bool NonEmptyString(JsonElement e, string name, out string? value)
    {
        value = e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
        return !string.IsNullOrEmpty(value);
    }

    internal static ApiError Invalid(string message) => ApiError.InvalidBody(message);
}
