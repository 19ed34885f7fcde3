using System.ComponentModel.DataAnnotations;

namespace Coinop.Market.Payments;

/// <summary>Limits and timings of the payment layer (defaults suit production; tests shorten the timings).</summary>
public sealed class PaymentsOptions
{
    /// <summary>The largest token the market takes in one payment, in sat (keeps every msat sum far inside 64 bits).</summary>
    [Range(1, 2_100_000_000_000_000)]
    public long MaxPaymentSat { get; set; } = 100_000_000;

    /// <summary>How far a signed provider request's timestamp may be from the market's clock.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00")]
    public TimeSpan SignedRequestWindow { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How often a node looks for its own holds and foreign redemptions that outlived their request.</summary>
    public TimeSpan SweepInterval { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Ready change kept per denomination (1, 2, 4 … sat); 0 issues all change on the spot.</summary>
    [Range(0, 10_000)]
    public int ChangeStockPerAmount { get; set; } = 16;

    /// <summary>The largest denomination kept in stock, in sat (a power of two); larger parts of change are issued on the spot.</summary>
    [Range(1, 1L << 40)]
    public long ChangeStockMaxSat { get; set; } = 512;

    /// <summary>How long a call to another accepted mint may take before the market gives up on it.</summary>
    public TimeSpan ForeignMintTimeout { get; set; } = TimeSpan.FromSeconds(30);
}
