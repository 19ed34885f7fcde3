using Coinop.Core.Text;

namespace Coinop.Market.Gateway;

/// <summary>
/// Text a provider sends that the market stores, shows or passes on: what counts as clean (no control characters, no
/// half of a surrogate pair; PostgreSQL refuses NUL and unpaired surrogates in text), how it is cut without splitting a
/// pair, and the display name a provider gives itself made clean.
/// </summary>
public static class ProviderText
{
    /// <summary>The longest display name kept.</summary>
    public const int MaxNameLength = 64;

    /// <summary>True when <paramref name="text"/> has no control character and no unpaired surrogate.</summary>
    public static bool IsClean(string text)
    {
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                i++;
            }
            else if (char.IsControl(c) || char.IsSurrogate(c))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary><paramref name="text"/> with each control character and unpaired surrogate replaced by a space.</summary>
    public static string Clean(string text)
    {
        if (IsClean(text))
        {
            return text;
        }

        var chars = text.ToCharArray();
        for (var i = 0; i < chars.Length; i++)
        {
            if (char.IsHighSurrogate(chars[i]) && i + 1 < chars.Length && char.IsLowSurrogate(chars[i + 1]))
            {
                i++;
            }
            else if (char.IsControl(chars[i]) || char.IsSurrogate(chars[i]))
            {
                chars[i] = ' ';
            }
        }

        return new string(chars);
    }

    /// <summary>The provider's display name, clean, trimmed and cut to <see cref="MaxNameLength"/>; its id when nothing is left.</summary>
    public static string Name(string? name, string providerId)
    {
        var clean = name is null ? "" : TextCut.Cut(Clean(TextCut.Cut(name, 4 * MaxNameLength)).Trim(), MaxNameLength).TrimEnd();
        return clean.Length == 0 ? providerId : clean;
    }
}
