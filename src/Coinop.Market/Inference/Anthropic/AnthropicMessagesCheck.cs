using System.Text.Json;
using static Coinop.Market.Inference.Anthropic.AnthropicCheck;

namespace Coinop.Market.Inference.Anthropic;

/// <summary>
/// Checks an Anthropic request's messages: roles, content blocks (text, images, tool uses and results, thinking), and
/// that every tool use is answered in the next message. Notes whether images appear and what only a native backend
/// can take.
/// </summary>
internal static class AnthropicMessagesCheck
{
    private static readonly string[] ImageTypes = ["image/jpeg", "image/png", "image/gif", "image/webp"];

    public static ApiError? Check(JsonElement messages, ref bool images, ref string? native)
    {
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
}
