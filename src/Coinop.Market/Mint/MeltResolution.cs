using Coinop.Market.Mint.Lightning;

namespace Coinop.Market.Mint;

/// <summary>What to do with a PENDING melt after asking the Lightning backend about its payment.</summary>
public enum MeltAction
{
    /// <summary>The payment succeeded: the inputs become SPENT, change is signed.</summary>
    Settle,

    /// <summary>The payment definitely failed: the inputs are released, the quote is UNPAID again.</summary>
    Release,

    /// <summary>No definitive answer (in flight, unknown, no answer at all): the inputs stay locked; ask again later.</summary>
    KeepPending,

    /// <summary>
    /// The backend has no record of the payment and the melt is old enough that no call of ours is still on its way:
    /// send it (again). Backends refuse a second payment of one payment hash, so this cannot pay twice.
    /// </summary>
    PayAgain,
}

/// <summary>
/// The rule that guards a melt's proofs: they are released only on a definitive failure and spent only on a
/// definitive success. An unknown or missing answer never releases them (a payment that left may still succeed;
/// releasing then would let the proofs be spent twice).
/// </summary>
public static class MeltResolution
{
    /// <param name="observed">What the backend said about the payment.</param>
    /// <param name="mayPayAgain">True for a melt no live request is paying any more (recovery of a melt pending past its grace).</param>
    public static MeltAction Decide(PaymentState observed, bool mayPayAgain) => observed switch
    {
        PaymentState.Paid => MeltAction.Settle,
        PaymentState.Failed => MeltAction.Release,
        PaymentState.Unknown when mayPayAgain => MeltAction.PayAgain,
        _ => MeltAction.KeepPending,
    };
}
