using Coinop.Core.Protocol;

namespace Coinop.Core.Pricing;

/// <summary>
/// What the market counted of a job itself: the input estimated from the consumer's request and the output from the
/// generated text it relayed (see <see cref="OutputTokensOf"/>).
/// </summary>
public readonly record struct WireCount(long InputTokens, long OutputTokens)
{
    /// <summary>Bytes of generated text the market counts as one token (tokenizers average 3 to 4 bytes a token).</summary>
    public const int BytesPerToken = 3;

    /// <summary>
    /// The output tokens of <paramref name="textBytes"/> of generated text (content, reasoning, tool-call arguments)
    /// relayed in <paramref name="textEvents"/> stream events that carried some: one per <see cref="BytesPerToken"/>
    /// bytes, rounded up, and at least one per such event (a backend sends at least a token per event).
    /// </summary>
    public static long OutputTokensOf(long textBytes, long textEvents) =>
        Math.Max(Math.Max(0, textEvents), (Math.Max(0, textBytes) + BytesPerToken - 1) / BytesPerToken);
}

/// <summary>
/// What a consumer is billed for a completed job: the provider's reported usage when it is within the tolerance of
/// what the market counted on the wire, else the market's own count. A provider can therefore never bill more than
/// <see cref="Ceiling"/> of the wire count, and gains nothing by claiming more. Pure; property-tested.
/// </summary>
public static class BillableUsage
{
    /// <summary>How far above the market's count a provider's figure may be and still be billed (tokenizers differ).</summary>
    public const int TolerancePercent = 50;

    /// <summary>Tokens added to the tolerance for what no text shows: the template's and the end-of-sequence tokens.</summary>
    public const int SlackTokens = 8;

    /// <summary>The most tokens billed for a part the market counted <paramref name="counted"/> of.</summary>
    public static long Ceiling(long counted)
    {
        Int128 c = Math.Max(0, counted);
        var ceiling = c + (c * TolerancePercent + 99) / 100 + SlackTokens;
        return ceiling > long.MaxValue ? long.MaxValue : (long)ceiling;
    }

    /// <summary>The usage billed: each part the provider's figure when within <see cref="Ceiling"/> of the wire count, else the wire count.</summary>
    public static TokenUsage From(WireCount wire, TokenUsage? claimed) =>
        claimed is null
            ? new TokenUsage(Math.Max(0, wire.InputTokens), Math.Max(0, wire.OutputTokens))
            : new TokenUsage(Part(wire.InputTokens, claimed.InputTokens), Part(wire.OutputTokens, claimed.OutputTokens));

    /// <summary>True when the claim was billed as reported (every part within tolerance).</summary>
    public static bool Accepts(WireCount wire, TokenUsage claimed) =>
        claimed.InputTokens <= Ceiling(wire.InputTokens) && claimed.OutputTokens <= Ceiling(wire.OutputTokens);

    private static long Part(long counted, long claimed) => claimed <= Ceiling(counted) ? Math.Max(0, claimed) : Math.Max(0, counted);
}
