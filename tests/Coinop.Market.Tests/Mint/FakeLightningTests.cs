using Coinop.Market.Mint.Lightning;
using CsCheck;

namespace Coinop.Market.Tests.Mint;

public class FakeLightningTests
{
    [Fact]
    public void Fake_invoices_carry_their_amount_and_payment_hash()
    {
        Gen.Select(Gen.ULong[1, ulong.MaxValue / 10], Gen.Byte.Array[32]).Sample(t =>
        {
            var (msat, hash) = t;
            var invoice = FakeBolt11.Encode(msat, hash, DateTimeOffset.FromUnixTimeSeconds(1_700_000_000), TimeSpan.FromMinutes(10));
            Assert.StartsWith("lnbc", invoice, StringComparison.Ordinal);
            Assert.Equal(msat, FakeBolt11.DecodeAmountMsat(invoice));
            Assert.Equal(Convert.ToHexStringLower(hash), FakeBolt11.DecodePaymentHash(invoice));
            Assert.Equal(msat, FakeBolt11.DecodeAmountMsat("lightning:" + invoice.ToUpperInvariant()));
        }, iter: 500);
        Assert.StartsWith("lnbc1u1", FakeBolt11.Encode(100_000, new byte[32], DateTimeOffset.UnixEpoch, TimeSpan.FromMinutes(1)), StringComparison.Ordinal);
        Assert.StartsWith("lnbc10p1", FakeBolt11.Encode(1, new byte[32], DateTimeOffset.UnixEpoch, TimeSpan.FromMinutes(1)), StringComparison.Ordinal); // 1 msat
    }

    [Theory]
    [InlineData("", null)]
    [InlineData("hello", null)]
    [InlineData("lnbc1pvjluez", null)] // amountless
    [InlineData("lnbc2500u1pvjluez", 250_000_000UL)]
    [InlineData("lnbc20m1pvjluez", 2_000_000_000UL)]
    [InlineData("lnbc10n1x", 1_000UL)]
    [InlineData("lnbc15p1x", null)] // 1.5 msat is not a whole msat
    [InlineData("lnbc99999999999999999999m1x", null)] // overflow
    [InlineData("lntb10n1x", null)] // not mainnet-looking
    public void Amounts_decode_from_the_human_readable_part(string invoice, ulong? msat) =>
        Assert.Equal(msat, FakeBolt11.DecodeAmountMsat(invoice));
}
