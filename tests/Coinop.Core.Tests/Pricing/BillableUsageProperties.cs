using Coinop.Core.Pricing;
using Coinop.Core.Protocol;
using CsCheck;

namespace Coinop.Core.Tests.Pricing;

/// <summary>The billing rule driven with random wire counts and provider claims, honest and inflated.</summary>
public class BillableUsageProperties
{
    private static readonly Gen<long> Tokens = Gen.Frequency((4, Gen.Long[0, 100_000]), (1, Gen.Long[-10, long.MaxValue]));

    private static readonly Gen<WireCount> Wires = Gen.Select(Tokens, Tokens, (i, o) => new WireCount(i, o));

    private static readonly Gen<TokenUsage> Claims = Gen.Select(Tokens, Tokens, (i, o) => new TokenUsage(i, o));

    [Fact]
    public void Nothing_beyond_the_ceiling_of_the_wire_count_is_ever_billed()
    {
        Gen.Select(Wires, Claims).Sample((wire, claim) =>
        {
            var billed = BillableUsage.From(wire, claim);
            return billed.InputTokens <= BillableUsage.Ceiling(wire.InputTokens) && billed.OutputTokens <= BillableUsage.Ceiling(wire.OutputTokens)
                && billed.InputTokens >= 0 && billed.OutputTokens >= 0;
        });
    }

    [Fact]
    public void A_claim_within_tolerance_is_billed_as_reported_and_one_beyond_it_gets_the_wire_count()
    {
        Gen.Select(Wires, Claims).Sample((wire, claim) =>
        {
            var billed = BillableUsage.From(wire, claim);
            bool Part(long counted, long claimed, long result) =>
                claimed <= BillableUsage.Ceiling(counted) ? result == Math.Max(0, claimed) : result == Math.Max(0, counted);
            return Part(wire.InputTokens, claim.InputTokens, billed.InputTokens) && Part(wire.OutputTokens, claim.OutputTokens, billed.OutputTokens);
        });
    }

    [Fact]
    public void Inflating_a_claim_never_bills_more_than_the_ceiling_and_an_honest_claim_is_never_cut()
    {
        Gen.Select(Gen.Long[0, 1_000_000], Gen.Long[0, 1_000_000], Gen.Long[1, 1_000_000_000]).Sample((counted, honestShare, inflation) =>
        {
            var wire = new WireCount(counted, counted);
            var honest = new TokenUsage(Math.Min(counted, honestShare), Math.Min(counted, honestShare));
            var inflated = new TokenUsage(counted + inflation, counted + inflation);
            return BillableUsage.From(wire, honest) == honest
                && BillableUsage.From(wire, inflated).OutputTokens <= BillableUsage.Ceiling(counted);
        });
    }

    [Fact]
    public void Without_a_claim_the_wire_count_is_billed()
    {
        Wires.Sample(wire => BillableUsage.From(wire, null) == new TokenUsage(Math.Max(0, wire.InputTokens), Math.Max(0, wire.OutputTokens)));
    }

    [Fact]
    public void The_ceiling_is_monotonic_and_never_overflows()
    {
        Gen.Select(Tokens, Gen.Long[0, long.MaxValue]).Sample((a, more) =>
        {
            var b = a > long.MaxValue - more ? long.MaxValue : a + more;
            return BillableUsage.Ceiling(a) <= BillableUsage.Ceiling(b) && BillableUsage.Ceiling(a) >= Math.Max(0, a);
        });
    }

    [Fact]
    public void Output_is_counted_per_three_bytes_of_text_and_at_least_once_per_event()
    {
        Assert.Equal(0, WireCount.OutputTokensOf(0, 0));
        Assert.Equal(1, WireCount.OutputTokensOf(1, 0));
        Assert.Equal(2, WireCount.OutputTokensOf(4, 1));
        Assert.Equal(5, WireCount.OutputTokensOf(5, 5)); // one character per event
        Gen.Select(Gen.Long[0, 1L << 40], Gen.Long[0, 1L << 40]).Sample((bytes, events) =>
            WireCount.OutputTokensOf(bytes, events) >= events && WireCount.OutputTokensOf(bytes, events) * 3 >= bytes);
    }

    [Fact]
    public void The_stated_tolerance_is_half_again_plus_eight_tokens()
    {
        Assert.Equal(8, BillableUsage.Ceiling(0));
        Assert.Equal(158, BillableUsage.Ceiling(100));
        Assert.Equal(new TokenUsage(10, 158), BillableUsage.From(new WireCount(10, 100), new TokenUsage(10, 158)));
        Assert.Equal(new TokenUsage(10, 100), BillableUsage.From(new WireCount(10, 100), new TokenUsage(10, 159)));
    }
}
