using Coinop.Market.Mint.Lightning;

namespace Coinop.Market.Mint;

/// <summary>
/// One payment hash may have several attempts on a node (Core Lightning's <c>listpays</c> lists each): the payment is
/// paid when any attempt completed, in flight while any is, failed only when every attempt failed, and unknown when
/// there is none. A stale failed attempt never hides a later success or one still in flight (the nutshell bug of a
/// "failed" status leading to a double spend).
/// </summary>
public static class PaymentAttempts
{
    public static PaymentState Combine(IEnumerable<PaymentState> attempts)
    {
        var seen = false;
        var pending = false;
        foreach (var a in attempts)
        {
            seen = true;
            if (a == PaymentState.Paid)
            {
                return PaymentState.Paid;
            }

            pending |= a is PaymentState.Pending or PaymentState.Unknown;
        }

        return !seen ? PaymentState.Unknown : pending ? PaymentState.Pending : PaymentState.Failed;
    }
}
