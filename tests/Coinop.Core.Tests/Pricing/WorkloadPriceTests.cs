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
    }

    [Fact]
    public void A_free_workload_buys_no_lease_and_charges_nothing()
    {
        var quote = WorkloadQuote.For(4, 8192, new WorkloadPrice(0, 0), []);
        Assert.True(quote.IsFree);
        Assert.Null(quote.LeaseFor(1000));
        Assert.All(quote.Charges([new ProviderRate("A", 0)], 3_600_000, long.MaxValue), c => Assert.Equal(0, c.Msat));
    }

    [Fact]
    public void Time_is_charged_per_provider_at_its_own_rate_rounded_down()
    {
        var quote = new WorkloadQuote(27m);
        // 1.5 s of a copy at 20 msat/s and a standby at 7 msat/s.
        Assert.Equal([new WorkloadCharge("A", 30), new WorkloadCharge("B", 10)], quote.Charges([new("A", 20m), new("B", 7m)], 1_500, long.MaxValue));
        // A promoted standby alone: only its own rate, however much the consumer's quote allows.
        Assert.Equal([new WorkloadCharge("B", 70)], quote.Charges([new("B", 7m)], 10_000, long.MaxValue));
        // Nothing served, nothing charged; never more than the account holds.
        Assert.Empty(quote.Charges([], 10_000, long.MaxValue));
        Assert.Equal([new WorkloadCharge("A", 25), new WorkloadCharge("B", 0)], quote.Charges([new("A", 20m), new("B", 7m)], 10_000, 25));
    }

    [Fact]
    public void Dearer_providers_than_quoted_are_scaled_down_to_the_quote()
    {
        var quote = new WorkloadQuote(20m);
        // A respawn at 30 msat/s beside a 10 msat/s standby: 40 msat/s scaled to the quoted 20, shares kept in proportion.
        Assert.Equal([new WorkloadCharge("C", 150), new WorkloadCharge("B", 50)], quote.Charges([new("C", 30m), new("B", 10m)], 10_000, long.MaxValue));
    }

    [Fact]
    public void Charges_never_exceed_the_quote_nor_what_is_held()
    {
        Gen.Select(Gen.Decimal[0m, 5000m].Array[0, 9], Gen.Decimal[0m, 20_000m], Gen.Long[-5, 400_000_000_000], Gen.Long[0, long.MaxValue])
            .Sample((rates, quoted, milliseconds, available) =>
            {
                var quote = new WorkloadQuote(quoted);
                var charges = quote.Charges([.. rates.Select((r, i) => new ProviderRate($"P{i}", r))], milliseconds, available);
                var total = charges.Aggregate(Int128.Zero, (sum, c) => sum + c.Msat);
                var ceiling = decimal.Floor(quoted * Math.Max(0, milliseconds) / 1000m);
                return charges.Count == rates.Length
                    && charges.All(c => c.Msat >= 0)
                    && total <= available
                    && (decimal)total <= ceiling
                    && charges.Select((c, i) => (decimal)c.Msat <= decimal.Floor(rates[i] * Math.Max(0, milliseconds) / 1000m)).All(x => x);
            });
    }

    [Fact]
    public void Paid_time_never_costs_more_than_was_paid()
    {
        Gen.Select(Gen.Double[0.01, 64], Gen.Long[16, 1 << 20], Gen.Long[0, 1000], Gen.Long[0, 1000], Gen.Long[1, 10_000_000_000], Gen.Double[0, 1])
            .Sample((cpu, memory, cpuRate, memRate, amount, usedShare) =>
            {
                var quote = WorkloadQuote.For(cpu, memory, new WorkloadPrice(cpuRate, memRate), []);
                if (quote.LeaseFor(amount) is not { } lease)
                {
                    return quote.IsFree;
                }

                var used = lease * usedShare;
                return quote.CostMsat(lease) <= amount
                    && quote.Charges([new ProviderRate("A", quote.MsatPerSecond)], (long)used.TotalMilliseconds, amount).Sum(c => c.Msat) <= quote.CostMsat(lease);
            });
    }
}
