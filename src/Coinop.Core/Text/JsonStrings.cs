using System.Text.Json;

namespace Coinop.Core.Text;

/// <summary>
/// JSON that parses may still hold a string .NET cannot read: an escaped unpaired surrogate (<c>"\ud800"</c>) makes
/// every <c>GetString</c> on it throw <see cref="InvalidOperationException"/>, not a <see cref="JsonException"/>. A body
/// is checked once where it is read, so no check or translation after it meets one (it was a 500).
/// The same check serves the market's consumer bodies and the simulator's requests.
/// </summary>
public static class JsonStrings
{
    public const string Unreadable = "the body has a string that is not valid Unicode (an unpaired surrogate escape such as \\ud800)";

    /// <summary>Whether every string and property name in <paramref name="json"/> (already parsed, so well-formed) can be read.</summary>
    public static bool AllReadable(ReadOnlySpan<byte> json)
    {
        // Almost every body has no surrogate escape at all: one vectorized search, and the reader pass only when one may be there.
        if (!MayEscapeSurrogate(json))
        {
            return true;
        }

        var reader = new Utf8JsonReader(json);
        while (reader.Read())
        {
            if (reader.TokenType is JsonTokenType.String or JsonTokenType.PropertyName && reader.ValueIsEscaped)
            {
                try
                {
                    reader.GetString();
                }
                catch (InvalidOperationException)
                {
                    return false;
                }
            }
        }

        return true;
    }

    /// <summary>Whether the text holds <c>\uD800</c>–<c>\uDFFF</c> (any case) anywhere.</summary>
    private static bool MayEscapeSurrogate(ReadOnlySpan<byte> json)
    {
        for (var at = json.IndexOf("\\u"u8); at >= 0; at = json.IndexOf("\\u"u8))
        {
            json = json[(at + 2)..];
            if (json.Length >= 2 && (json[0] | 0x20) == 'd' && (json[1] | 0x20) is (>= (byte)'8' and <= (byte)'9') or (>= (byte)'a' and <= (byte)'f'))
            {
                return true;
            }
        }

        return false;
    }
}
