namespace Coinop.Market.Payments;

/// <summary>
/// The arithmetic of settling a job, in msat. The consumer is charged the job's cost, at most the reservation;
/// the provider gets <c>charge × (1 − fee%/100)</c> rounded down and the market fee is the rest. Ecash change is
/// whole sats: when a token paid, the sub-sat remainder of what is left is spent too and goes to the fee.
/// </summary>
public static class Settlement
{
    public static long Charge(long costMsat, long reservationMsat) => Math.Clamp(costMsat, 0, Math.Max(0, reservationMsat));

    public static long ProviderShare(long chargeMsat, double feePercent)
    {
        var share = decimal.Floor(chargeMsat * (100m - (decimal)feePercent) / 100m);
        return (long)Math.Clamp(share, 0m, chargeMsat);
    }

    /// <summary>What is left of <paramref name="heldMsat"/> after the charge, as whole sats of change and a sub-sat remainder.</summary>
    public static (long ChangeSat, long RemainderMsat) Change(long heldMsat, long chargeMsat)
    {
        var left = heldMsat - chargeMsat;
        return (left / 1000, left % 1000);
    }

    /// <summary>Msat rounded up to whole sats (what a token must carry to cover an amount).</summary>
    public static long CeilSat(long msat) => msat / 1000 + (msat % 1000 == 0 ? 0 : 1);
}
