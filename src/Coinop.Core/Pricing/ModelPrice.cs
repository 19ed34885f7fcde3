using System.Globalization;
using Coinop.Core.Protocol;

namespace Coinop.Core.Pricing;

/// <summary>
/// A price in millisatoshi per million tokens, input and output. Users write prices in sats per million
/// tokens (<c>IN:OUT</c>, decimals allowed); the market keeps msat so sub-sat prices and costs stay exact.
/// </summary>
public readonly record struct ModelPrice(long InputMsatPerMtok, long OutputMsatPerMtok)
{
    /// <summary>The default a provider charges when it names no price: 1,000 sats in, 3,000 sats out per million tokens.</summary>
    public static ModelPrice Default { get; } = new(1_000_000, 3_000_000);

    /// <summary>Parses <c>IN:OUT</c> in sats per million tokens, e.g. <c>1000:3000</c> or <c>0.5:1.5</c>.</summary>
    public static bool TryParseSats(string? text, out ModelPrice price, out string? error)
    {
        price = default;
        error = null;
        var parts = text?.Split(':') ?? [];
        if (parts.Length != 2
            || !TryParseSatsAmount(parts[0], out var input)
            || !TryParseSatsAmount(parts[1], out var output))
        {
            error = $"'{text}' is not a price: expected IN:OUT in sats per million tokens, e.g. 1000:3000";
            return false;
        }

        price = new ModelPrice(input, output);
        return true;
    }

    private static bool TryParseSatsAmount(string text, out long msat)
    {
        msat = 0;
        if (!decimal.TryParse(text.Trim(), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var sats)
            || sats < 0 || sats > 1_000_000_000_000m)
        {
            return false;
        }

        msat = (long)decimal.Round(sats * 1000m, MidpointRounding.AwayFromZero);
        return true;
    }

    /// <summary>The cost of a usage in msat, rounded up so the market never undercharges by rounding.</summary>
    public long CostMsat(TokenUsage usage) => CostMsat(usage.InputTokens, usage.OutputTokens);

    public long CostMsat(long inputTokens, long outputTokens)
    {
        var total = (Int128)Math.Max(0, inputTokens) * InputMsatPerMtok + (Int128)Math.Max(0, outputTokens) * OutputMsatPerMtok;
        var cost = (total + 999_999) / 1_000_000;
        return cost > long.MaxValue ? long.MaxValue : (long)cost;
    }

    /// <summary>True when both parts are at or under the ceiling's.</summary>
    public bool IsWithin(ModelPrice ceiling) =>
        InputMsatPerMtok <= ceiling.InputMsatPerMtok && OutputMsatPerMtok <= ceiling.OutputMsatPerMtok;

    /// <summary>A single figure for comparing prices: output weighs three times input, as in a typical chat.</summary>
    public double BlendedMsatPerMtok => (InputMsatPerMtok + 3.0 * OutputMsatPerMtok) / 4.0;

    public string ToSatsString() =>
        string.Create(CultureInfo.InvariantCulture, $"{InputMsatPerMtok / 1000m:0.###}:{OutputMsatPerMtok / 1000m:0.###}");

    public override string ToString() => ToSatsString();
}
