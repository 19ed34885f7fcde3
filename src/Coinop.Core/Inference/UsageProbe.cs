namespace Coinop.Core.Inference;

/// <summary>
/// A cheap test, before any JSON parsing, of whether backend output may carry token usage: some <c>"usage"</c> key
/// must hold an object (OpenAI streams send <c>"usage":null</c> on every chunk but the last). Quotes inside JSON
/// strings are escaped, so the pattern only matches real keys. Shared by the provider's and the market's scanners.
/// </summary>
public static class UsageProbe
{
    public static bool MayHoldUsage(ReadOnlySpan<byte> json)
    {
        var key = "\"usage\""u8;
        for (var at = json.IndexOf(key); at >= 0; at = json.IndexOf(key))
        {
            json = json[(at + key.Length)..];
            var rest = json.TrimStart(" \t\r\n"u8);
            if (rest is [(byte)':', ..] && rest[1..].TrimStart(" \t\r\n"u8) is [(byte)'{', ..])
            {
                return true;
            }
        }

        return false;
    }
}
