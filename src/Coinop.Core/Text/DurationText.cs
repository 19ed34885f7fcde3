using System.Globalization;

namespace Coinop.Core.Text;

/// <summary>Human durations on the command line: <c>90s</c>, <c>15m</c>, <c>24h</c>, <c>7d</c>, or plain seconds.</summary>
public static class DurationText
{
    public static bool TryParse(string? text, out TimeSpan duration)
    {
        duration = default;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        text = text.Trim();
        double scale;
        string number;
        if (text.EndsWith("ms", StringComparison.OrdinalIgnoreCase))
        {
            (scale, number) = (0.001, text[..^2]);
        }
        else
        {
            var unit = char.ToLowerInvariant(text[^1]);
            scale = unit switch
            {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86400,
                _ when char.IsDigit(unit) => 1,
                _ => double.NaN,
            };
            number = char.IsDigit(unit) ? text : text[..^1];
        }

        if (double.IsNaN(scale)
            || !double.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var value)
            || value < 0 || double.IsInfinity(value))
        {
            return false;
        }

        var seconds = value * scale;
        if (seconds > TimeSpan.MaxValue.TotalSeconds / 2)
        {
            return false;
        }

        duration = TimeSpan.FromSeconds(seconds);
        return true;
    }

    public static string Format(TimeSpan d) => d.TotalSeconds switch
    {
        < 1 => $"{d.TotalMilliseconds:0}ms",
        < 120 => $"{d.TotalSeconds:0.#}s",
        < 7200 => $"{d.TotalMinutes:0.#}m",
        < 172800 => $"{d.TotalHours:0.#}h",
        _ => $"{d.TotalDays:0.#}d",
    };
}
