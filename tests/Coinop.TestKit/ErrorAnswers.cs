using System.Text.Json;

namespace Coinop.TestKit;

/// <summary>
/// The rule every HTTP error of Coinop follows: a JSON body (<c>application/json</c> or <c>application/problem+json</c>)
/// that carries a message, in one of the shapes clients read (OpenAI's and Anthropic's <c>error</c>, Cashu's NUT-00
/// <c>detail</c>, RFC 7807), and never a 5xx for bad input.
/// </summary>
public static class ErrorAnswers
{
    /// <summary>
    /// What is wrong with an error answer, or null when it is a clean refusal. A 5xx is wrong unless
    /// <paramref name="allowedServerError"/> accepts its status and error code (a refusal about the server's state, not the input).
    /// </summary>
    public static string? Problem(int status, string? mediaType, string text, bool head = false, Func<int, string?, bool>? allowedServerError = null)
    {
        if (mediaType is not ("application/json" or "application/problem+json"))
        {
            return $"a {status} without a JSON body";
        }

        if (head)
        {
            return status >= 500 ? $"a {status}" : null;
        }

        string? message;
        string? code;
        try
        {
            using var json = JsonDocument.Parse(text);
            (message, code) = MessageOf(json.RootElement);
        }
        catch (JsonException)
        {
            return $"a {status} whose body is not JSON";
        }

        if (string.IsNullOrWhiteSpace(message))
        {
            return $"a {status} whose JSON carries no error message";
        }

        if (status >= 500 && allowedServerError?.Invoke(status, code) != true)
        {
            return $"a server error ({status}, {code})";
        }

        return null;
    }

    private static (string? Message, string? Code) MessageOf(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            return (null, null);
        }

        static string? Str(JsonElement e, string name) => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
        if (root.TryGetProperty("error", out var error))
        {
            return error.ValueKind == JsonValueKind.Object ? (Str(error, "message"), Str(error, "code")) : (Str(root, "error"), null);
        }

        return (Str(root, "detail") ?? Str(root, "title") ?? Str(root, "message"), root.TryGetProperty("code", out var c) ? c.ToString() : null);
    }
}
