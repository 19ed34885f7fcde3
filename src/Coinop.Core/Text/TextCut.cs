namespace Coinop.Core.Text;

/// <summary>Text someone else sent, cut to a length to store or quote back, never ending in half a surrogate pair.</summary>
public static class TextCut
{
    /// <summary>The first <paramref name="max"/> characters of <paramref name="text"/> (one fewer if that would split a pair).</summary>
    public static string Cut(string text, int max) =>
        text.Length <= max ? text : text[..(char.IsHighSurrogate(text[max - 1]) ? max - 1 : max)];

    /// <summary><see cref="Cut"/>, with an ellipsis when something was cut: for quoting input back in an error.</summary>
    public static string Quote(string text, int max) => text.Length <= max ? text : Cut(text, max) + "…";
}
