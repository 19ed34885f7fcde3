using Coinop.Core.Pricing;
using CsCheck;

namespace Coinop.Core.Tests.Pricing;

public class WorkloadPriceTests
{
    [Theory]
    [InlineData("20:5", 20, 5)]
    [InlineData(" 0:0 ", 0, 0)]
    [InlineData("1000000:1", 1_000_000, 1)]
    public void Prices_parse_as_whole_msat(string text, long cpu, long memory)
    {
        Assert.True(WorkloadPrice.TryParse(text, out var price, out _));
        Assert.Equal(new WorkloadPrice(cpu, memory), price);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("20")]
    [InlineData("20:5:1")]
    [InlineData("-1:5")]
    [InlineData("1.5:5")]
    [InlineData("1000001:0")]
    public void Bad_prices_get_a_clear_error(string? text)
    {
        Assert.False(WorkloadPrice.TryParse(text, out _, out var error));
        Assert.Contains("CPU_MSAT_PER_CORE_S:MEM_MSAT_PER_GB_S", error, StringComparison.Ordinal);
    }

    [Fact]
    public void A_quote_adds_the_capacity_standbys_reserve()
    {
        var quote = WorkloadQuote.For(0.5, 2048, new WorkloadPrice(20, 5), [new WorkloadPrice(10, 1), new WorkloadPrice(0, 0)]);
        // primary 0.5 x 20 + 2 x 5 = 20; standby 0.5 x 10 + 2 x 1 = 7; a free standby adds nothing.
        Assert.Equal(27m, quote.MsatPerSecond);
        Assert.Equal(27 * 3600, quote.CostMsat(TimeSpan.FromHours(1)));
        Assert.Equal(TimeSpan.FromSeconds(37), quote.LeaseFor(1000)); // 1000 / 27 = 37.03
        Assert.Equal(13, quote.RefundMsat(TimeSpan.FromSeconds(0.5)));
    }

    [Fact]
    public void A_free_workload_buys_no_lease_and_refunds_nothing()
    {
        var quote = WorkloadQuote.For(4, 8192, new WorkloadPrice(0, 0), []);
        Assert.True(quote.IsFree);
        Assert.Null(quote.LeaseFor(1000));
        Assert.Equal(0, quote.RefundMsat(TimeSpan.FromHours(1)));
    }

    [Fact]
    public void Paid_time_never_costs_more_than_was_paid_and_refunds_never_exceed_it()
    {
        Gen.Select(Gen.Double[0.01, 64], Gen.Long[16, 1 << 20], Gen.Long[0, 1000], Gen.Long[0, 1000], Gen.Long[1, 10_000_000_000], Gen.Double[0, 1])
            .Sample((cpu, memory, cpuRate, memRate, amount, usedShare) =>
            {
                var quote = WorkloadQuote.For(cpu, memory, new WorkloadPrice(cpuRate, memRate), []);
                if (quote.LeaseFor(amount) is not { } lease)
                {
                    return quote.IsFree;
                }

                var unused = lease * (1 - usedShare);
                return quote.CostMsat(lease) <= amount
                    && quote.RefundMsat(unused) <= quote.CostMsat(lease)
                    && quote.RefundMsat(unused) >= 0;
            });
    }
}
