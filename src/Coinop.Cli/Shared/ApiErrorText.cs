using System.Text.Json;

namespace Coinop.Cli.Shared;

/// <summary>Reads the message out of a market's JSON error body, for one-line CLI errors.</summary>
public static class ApiErrorText
{
    public static string MessageOf(string body)
    {
        try
        {
            using var doc = JsonDocument.Parse(body);
            if (doc.RootElement.TryGetProperty("error", out var error) && error.TryGetProperty("message", out var message))
            {
                return message.GetString() ?? "error";
            }
        }
        catch (JsonException)
        {
        }

        return body.Length > 200 ? body[..200] : body;
    }
}
