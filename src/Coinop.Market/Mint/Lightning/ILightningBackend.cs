namespace Coinop.Market.Mint.Lightning;

/// <summary>An invoice the backend created for a mint quote.</summary>
public sealed record LightningInvoice(string Bolt11, string PaymentHash, DateTimeOffset ExpiresAt);

public enum InvoiceState
{
    Unpaid,
    Paid,
    Expired,
}

public enum PaymentState
{
    /// <summary>The payment is in flight; its inputs stay locked.</summary>
    Pending,
    Paid,

    /// <summary>The payment definitely failed; the inputs can be released.</summary>
    Failed,

    /// <summary>The backend has no record of the payment (it was never attempted).</summary>
    Unknown,
}

/// <summary>What paying an invoice would cost: the amount it asks for and the most the routing fee may be.</summary>
public sealed record PaymentQuote(ulong AmountMsat, ulong FeeReserveSat, string PaymentHash);

/// <summary>The outcome of a payment attempt.</summary>
public sealed record PaymentResult(PaymentState State, ulong FeePaidSat = 0, string? Preimage = null, string? Error = null);

/// <summary>
/// The mint's Lightning node. Real backends (LND, CLN, LNbits, NWC…) implement this; the only one today is
/// <see cref="FakeLightningBackend"/>. Every call must be safe to retry, and payments must be idempotent per
/// payment hash so that a mint restarting mid-melt can ask what happened.
/// </summary>
public interface ILightningBackend
{
    /// <summary>The <c>--lightning</c> name, e.g. <c>fake</c>.</summary>
    string Name { get; }

    Task<LightningInvoice> CreateInvoiceAsync(ulong amountSat, string? description, TimeSpan expiry, CancellationToken cancellationToken);

    Task<InvoiceState> CheckInvoiceAsync(string paymentHash, CancellationToken cancellationToken);

    /// <summary>Decodes <paramref name="bolt11"/> and estimates the fee; null when it is not an invoice this backend can pay.</summary>
    Task<PaymentQuote?> QuotePaymentAsync(string bolt11, CancellationToken cancellationToken);

    Task<PaymentResult> PayInvoiceAsync(string bolt11, ulong maxFeeSat, CancellationToken cancellationToken);

    Task<PaymentResult> CheckPaymentAsync(string paymentHash, CancellationToken cancellationToken);
}
