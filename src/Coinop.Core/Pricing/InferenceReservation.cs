namespace Coinop.Core.Pricing;

/// <summary>
/// What a request asks for, as the market reads it before dispatch: the input tokens it estimates from the body, the
/// output limit the consumer set (the largest of <c>max_tokens</c>, <c>max_completion_tokens</c>, <c>n_predict</c>;
/// null when none), and how many outputs it asks for (<c>n</c> × the prompts of a prompt array).
/// </summary>
public readonly record struct ReservationBasis(long InputTokens, long? MaxOutputTokens, int Outputs = 1);

/// <summary>
/// The operator's bounds on what a provider may declare (<c>--max-price</c>, <c>--max-context</c>) and the output
/// reserved when neither the consumer nor the offer names a limit. A provider's word never reaches past these.
/// </summary>
public sealed record OfferLimits(ModelPrice MaxPrice, int MaxContext, int DefaultOutputTokens)
{
    /// <summary>10,000:30,000 sat per million tokens (ten times the default price), 131,072 tokens, 8,192 tokens.</summary>
    public static OfferLimits Default { get; } = new(new ModelPrice(10_000_000, 30_000_000), 131_072, 8192);
}

/// <summary>Why an offer cannot take a request at any reservation.</summary>
public enum ReservationRefusal
{
    None,

    /// <summary>The offer's price is above the operator's <c>--max-price</c>: the market routes nothing to it.</summary>
    AboveMarketMaximum,

    /// <summary>The offer's price is above the consumer's <c>X-Coinop-Max-Price</c>.</summary>
    AboveConsumerCeiling,
}

/// <summary>What a job holds before it goes to one provider: <see cref="Msat"/> covers the input estimate and <see cref="OutputTokens"/> at the offer's price.</summary>
public readonly record struct Reservation(long Msat, long OutputTokens, ModelPrice Price);

/// <summary>
/// The reservation of a job against the offer of the provider it goes to — never against other offers, so one
/// provider's claims cannot raise what a consumer routed elsewhere pays. Pure: the router asks it for every
/// candidate and billing holds its answer for the chosen one.
/// </summary>
public static class InferenceReservation
{
    /// <summary>The most outputs one request may ask for (<c>n</c> × prompts); more is refused before routing.</summary>
    public const int MaxOutputs = 128;

    /// <summary>
    /// The reservation for <paramref name="basis"/> at an offer of <paramref name="price"/> with a declared
    /// <paramref name="contextWindow"/>; false with the reason when the price is outside the operator's or the
    /// consumer's bounds. Output per choice is the consumer's limit, bounded by the declared window, which is itself
    /// bounded by <see cref="OfferLimits.MaxContext"/> (no window declared: <see cref="OfferLimits.DefaultOutputTokens"/>
    /// stands in for it).
    /// </summary>
    public static bool TryReserve(in ReservationBasis basis, ModelPrice price, int? contextWindow, OfferLimits limits, ModelPrice? ceiling,
        out Reservation reservation, out ReservationRefusal refusal)
    {
        reservation = default;
        if (!price.IsWithin(limits.MaxPrice))
        {
            refusal = ReservationRefusal.AboveMarketMaximum;
            return false;
        }

        if (ceiling is { } c && !price.IsWithin(c))
        {
            refusal = ReservationRefusal.AboveConsumerCeiling;
            return false;
        }

        refusal = ReservationRefusal.None;
        var output = Math.Min(basis.MaxOutputTokens ?? long.MaxValue, Window(contextWindow, limits)) * Math.Clamp(basis.Outputs, 1, MaxOutputs);
        var input = Math.Max(0, basis.InputTokens);
        reservation = new Reservation(price.CostMsat(input, output), output, price);
        return true;
    }

    /// <summary>The output a provider's declared window allows one choice, as the market believes it.</summary>
    public static long Window(int? contextWindow, OfferLimits limits) =>
        contextWindow is { } window && window > 0 ? Math.Min(window, limits.MaxContext) : Math.Min(limits.DefaultOutputTokens, limits.MaxContext);
}
