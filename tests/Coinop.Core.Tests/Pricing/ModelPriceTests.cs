using Coinop.Core.Pricing;
using Coinop.Core.Protocol;
using CsCheck;

namespace Coinop.Core.Tests.Pricing;

public class ModelPriceTests
{
    [Theory]
    [InlineData("1000:3000", 1_000_000, 3_000_000)]
    [InlineData("0.5:1.25", 500, 1250)]
    [InlineData("0:0", 0, 0)]
    public void Parses_sats_per_million_tokens(string text, long input, long output)
    {
        Assert.True(ModelPrice.TryParseSats(text, out var price, out _));
        Assert.Equal(new ModelPrice(input, output), price);
    }

    [Theory]
    [InlineData("")]
    [InlineData("1000")]
    [InlineData("a:b")]
    [InlineData("-1:2")]
    [InlineData("1:2:3")]
    public void Refuses_what_is_not_a_price(string text)
    {
        Assert.False(ModelPrice.TryParseSats(text, out _, out var error));
        Assert.Contains("IN:OUT", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Cost_rounds_up_to_the_next_msat()
    {
        var price = new ModelPrice(1_000_000, 3_000_000); // 1 msat per input token, 3 per output token
        Assert.Equal(10 + 60, price.CostMsat(new TokenUsage(10, 20)));
        Assert.Equal(1, new ModelPrice(1, 1).CostMsat(1, 0));
        Assert.Equal(0, new ModelPrice(1, 1).CostMsat(0, 0));
    }

    [Fact]
    public void Cost_is_monotonic_and_never_overflows()
    {
        Gen.Select(Gen.Long[0, long.MaxValue / 2], Gen.Long[0, long.MaxValue / 2], Gen.Long[0, 1L << 40], Gen.Long[0, 1L << 40])
            .Sample((inPrice, outPrice, tokens, extra) =>
            {
                var price = new ModelPrice(inPrice, outPrice);
                var a = price.CostMsat(tokens, tokens);
                var b = price.CostMsat(tokens + extra, tokens);
                return a >= 0 && b >= a;
            });
    }
}
