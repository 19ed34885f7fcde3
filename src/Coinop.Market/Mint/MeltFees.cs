namespace Coinop.Market.Mint;

/// <summary>
/// The NUT-05 <c>fee_reserve</c> of a melt: the most routing fee the mint lets the Lightning node spend, paid by the
/// wallet up front and returned as NUT-08 change when the payment cost less. A percentage of the amount, at least a
/// floor; nothing for an invoice this mint issued (it settles internally, without Lightning).
/// </summary>
public static class MeltFees
{
    public static ulong FeeReserveSat(ulong amountMsat, double percent, ulong minSat, bool internalSettlement)
    {
        if (internalSettlement)
        {
            return 0;
        }

        // ceil(amount × percent / 100) in sat, computed in msat without floating error for whole-percent values.
        var ppm = (UInt128)Math.Round(Math.Clamp(percent, 0, 100) * 10_000);
        var feeMsat = ((UInt128)amountMsat * ppm + 999_999) / 1_000_000;
        var feeSat = (ulong)((feeMsat + 999) / 1000);
        return Math.Max(feeSat, minSat);
    }
}

/// <summary>Why a mint or melt quote is refused by the operator's limits, or null when it is within them.</summary>
public static class MintLimits
{
    /// <param name="amountSat">The new mint quote's amount.</param>
    /// <param name="outstandingSat">Ecash the mint has issued against Lightning payments and not yet melted, plus open mint quotes.</param>
    public static string? CheckMint(ulong amountSat, ulong maxSat, ulong outstandingSat, ulong maxOutstandingSat)
    {
        if (amountSat == 0 || amountSat > maxSat)
        {
            return $"amount must be between 1 and {maxSat} sat (--mint-max-sat)";
        }

        return maxOutstandingSat > 0 && (UInt128)outstandingSat + amountSat > maxOutstandingSat
            ? $"the mint's outstanding ecash would pass its cap of {maxOutstandingSat} sat; try a smaller amount or later"
            : null;
    }

    public static string? CheckMelt(ulong amountSat, ulong maxSat) =>
        amountSat == 0 || amountSat > maxSat ? $"amount must be between 1 and {maxSat} sat (--melt-max-sat)" : null;
}
