using Coinop.Core.Pricing;
using Coinop.Core.Protocol;
using CsCheck;

namespace Coinop.Core.Tests.Pricing;

/// <summary>
/// The reservation rule, driven with random requests, offers (honest and absurd: huge windows, huge prices), operator
/// limits and consumer ceilings.
/// </summary>
public class InferenceReservationProperties
{
    private static readonly Gen<ModelPrice> Prices = Gen.Frequency(
        (3, Gen.Select(Gen.Long[0, 100_000_000], Gen.Long[0, 100_000_000], (i, o) => new ModelPrice(i, o))),
        (1, Gen.Select(Gen.Long[0, long.MaxValue / 4], Gen.Long[0, long.MaxValue / 4], (i, o) => new ModelPrice(i, o))));

    private static readonly Gen<int?> Windows = Gen.Frequency(
        (1, Gen.Const((int?)null)),
        (3, Gen.Int[-5, 200_000].Select(w => (int?)w)),
        (1, Gen.Int[0, int.MaxValue].Select(w => (int?)w)));

    private static readonly Gen<ReservationBasis> Bases = Gen.Select(
        Gen.Long[0, 10_000_000],
        Gen.Frequency((1, Gen.Const((long?)null)), (3, Gen.Long[1, 1_000_000_000_000].Select(m => (long?)m))),
        Gen.Int[-3, 200],
        (input, max, outputs) => new ReservationBasis(input, max, outputs));

    private static readonly Gen<OfferLimits> Limits = Gen.Select(Prices, Gen.Int[1, 1_000_000], Gen.Int[1, 100_000],
        (price, context, output) => new OfferLimits(price, context, output));

    private static readonly Gen<ModelPrice?> Ceilings = Gen.Frequency((1, Gen.Const((ModelPrice?)null)), (2, Prices.Select(p => (ModelPrice?)p)));

    [Fact]
    public void An_offer_is_refused_exactly_when_its_price_is_outside_the_operators_or_the_consumers_bounds()
    {
        Gen.Select(Bases, Prices, Windows, Limits, Ceilings).Sample((basis, price, window, limits, ceiling) =>
        {
            var accepted = InferenceReservation.TryReserve(basis, price, window, limits, ceiling, out _, out var refusal);
            var within = price.IsWithin(limits.MaxPrice) && (ceiling is not { } c || price.IsWithin(c));
            return accepted == within && (accepted ? refusal == ReservationRefusal.None : refusal != ReservationRefusal.None);
        });
    }

    [Fact]
    public void A_reservation_never_exceeds_the_operators_worst_case_whatever_the_offer_declares()
    {
        Gen.Select(Bases, Prices, Windows, Limits, Ceilings).Sample((basis, price, window, limits, ceiling) =>
        {
            if (!InferenceReservation.TryReserve(basis, price, window, limits, ceiling, out var reservation, out _))
            {
                return true;
            }

            var perOutput = Math.Min(basis.MaxOutputTokens ?? long.MaxValue, Math.Max(limits.MaxContext, limits.DefaultOutputTokens));
            var worst = limits.MaxPrice.CostMsat(Math.Max(0, basis.InputTokens), perOutput * Math.Clamp(basis.Outputs, 1, InferenceReservation.MaxOutputs));
            return reservation.Msat <= worst && reservation.Msat >= 0 && reservation.Price == price;
        });
    }

    [Fact]
    public void A_declared_window_beyond_the_operators_limit_buys_nothing()
    {
        Gen.Select(Bases, Prices, Gen.Int[0, int.MaxValue], Limits).Sample((basis, price, window, limits) =>
        {
            var huge = InferenceReservation.TryReserve(basis, price, Math.Max(window, limits.MaxContext), limits, null, out var a, out _);
            var atLimit = InferenceReservation.TryReserve(basis, price, limits.MaxContext, limits, null, out var b, out _);
            return huge == atLimit && a == b;
        });
    }

    [Fact]
    public void Any_usage_within_the_basis_costs_no_more_than_the_reservation()
    {
        Gen.Select(Bases, Prices, Windows, Limits, Gen.Double[0, 1], Gen.Double[0, 1]).Sample((basis, price, window, limits, inShare, outShare) =>
        {
            if (!InferenceReservation.TryReserve(basis, price, window, limits, null, out var reservation, out _))
            {
                return true;
            }

            var usage = new TokenUsage((long)(Math.Max(0, basis.InputTokens) * inShare), (long)(reservation.OutputTokens * outShare));
            return price.CostMsat(usage) <= reservation.Msat
                && price.CostMsat(Math.Max(0, basis.InputTokens), reservation.OutputTokens) == reservation.Msat;
        });
    }

    [Fact]
    public void More_outputs_or_a_higher_limit_never_reserve_less()
    {
        Gen.Select(Bases, Prices, Windows, Limits, Gen.Int[0, 10], Gen.Long[0, 1000]).Sample((basis, price, window, limits, moreOutputs, moreTokens) =>
        {
            if (!InferenceReservation.TryReserve(basis, price, window, limits, null, out var a, out _))
            {
                return true;
            }

            var bigger = basis with { Outputs = Math.Max(basis.Outputs, 1) + moreOutputs, MaxOutputTokens = basis.MaxOutputTokens + moreTokens };
            InferenceReservation.TryReserve(bigger, price, window, limits, null, out var b, out _);
            return b.Msat >= a.Msat && b.OutputTokens >= a.OutputTokens;
        });
    }

    [Fact]
    public void The_measured_attack_one_honest_offer_costs_at_most_25_sat_and_a_huge_window_is_bounded()
    {
        var basis = new ReservationBasis(20, null);
        Assert.True(InferenceReservation.TryReserve(basis, ModelPrice.Default, 8192, OfferLimits.Default, null, out var honest, out _));
        Assert.True(honest.Msat <= 25_000, $"{honest.Msat} msat");

        // 10^9 tokens declared: the operator's default window (131,072) stands in for it.
        Assert.True(InferenceReservation.TryReserve(basis, ModelPrice.Default, 1_000_000_000, OfferLimits.Default, null, out var wide, out _));
        Assert.Equal(131_072, wide.OutputTokens);

        // A price above the default --max-price is never reserved at all.
        Assert.False(InferenceReservation.TryReserve(basis, new ModelPrice(1_000_000_000, 3_000_000_000), 8192, OfferLimits.Default, null, out _, out var refusal));
        Assert.Equal(ReservationRefusal.AboveMarketMaximum, refusal);
    }
}
