namespace Coinop.Storage.Ledger;

/// <summary>
/// The books at one instant. The equations hold at every commit: received = spent + refunded + balances + held;
/// spent = provider_earned + fee; provider_earned = paid_out + owed. Held is what requests in flight reserve plus what
/// paid workloads still hold.
/// </summary>
public sealed record LedgerSummary(
    long ReceivedMsat,
    long SpentMsat,
    long RefundedMsat,
    long BalancesMsat,
    long HeldMsat,
    long ProviderEarnedMsat,
    long OwedMsat,
    long FeeMsat,
    long PaidOutMsat)
{
    /// <summary>The equations that do not hold (none in a healthy store), and any negative total.</summary>
    public IReadOnlyList<string> Imbalances()
    {
        var problems = new List<string>();
        if (ReceivedMsat != SpentMsat + RefundedMsat + BalancesMsat + HeldMsat)
        {
            problems.Add($"received {ReceivedMsat} != spent {SpentMsat} + refunded {RefundedMsat} + balances {BalancesMsat} + held {HeldMsat}");
        }

        if (SpentMsat != ProviderEarnedMsat + FeeMsat)
        {
            problems.Add($"spent {SpentMsat} != provider earned {ProviderEarnedMsat} + fee {FeeMsat}");
        }

        if (ProviderEarnedMsat != PaidOutMsat + OwedMsat)
        {
            problems.Add($"provider earned {ProviderEarnedMsat} != paid out {PaidOutMsat} + owed {OwedMsat}");
        }

        if (BalancesMsat < 0 || HeldMsat < 0 || OwedMsat < 0 || FeeMsat < 0 || RefundedMsat < 0 || PaidOutMsat < 0)
        {
            problems.Add($"a negative total: {this}");
        }

        return problems;
    }
}

/// <summary>What a provider earned, was paid, and is owed, in msat.</summary>
public sealed record ProviderEarnings(string ProviderId, long EarnedMsat, long PaidOutMsat)
{
    public long OwedMsat => EarnedMsat - PaidOutMsat;
}
