using Coinop.Ecash.Lightning;

namespace Coinop.Market.Mint.Lightning;

/// <summary>An invoice the backend created for a mint quote.</summary>
public sealed record LightningInvoice(string Bolt11, string PaymentHash, DateTimeOffset ExpiresAt);

public enum InvoiceState
{
    Unpaid,
    Paid,
    Expired,
}

/// <summary>An incoming payment the backend reported, and where its invoice stream resumes after it.</summary>
public sealed record InvoicePaid(string PaymentHash, ulong AmountPaidMsat, string Cursor);

public enum PaymentState
{
    /// <summary>The payment is in flight (or its outcome is not known yet); its inputs stay locked.</summary>
    Pending,
    Paid,

    /// <summary>The payment definitely failed; the inputs can be released.</summary>
    Failed,

    /// <summary>The backend positively has no record of a payment of this hash (it was never sent).</summary>
    Unknown,
}

/// <summary>The outcome of a payment attempt.</summary>
public sealed record PaymentResult(PaymentState State, ulong FeePaidSat = 0, string? Preimage = null, string? Error = null);

/// <summary>
/// The Lightning node could not be reached, and the request certainly never arrived (the connection was never made):
/// the mint answers 503 and, for a melt, releases the proofs it had locked for it.
/// </summary>
public sealed class LightningUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// The mint's Lightning node: <c>fake</c> (<see cref="FakeLightningBackend"/>), LND or Core Lightning. Every call must
/// be safe to retry, and payments must be idempotent per payment hash (a node refuses to pay one hash twice) so that
/// a mint restarting mid-melt can ask what happened and send again what was never sent.
/// </summary>
public interface ILightningBackend
{
    /// <summary>The <c>--lightning</c> name: <c>fake</c>, <c>lnd</c>, <c>cln</c>.</summary>
    string Name { get; }

    /// <summary>True when the backend moves no real money (<c>fake</c>): everything the mint issues is demo money.</summary>
    bool IsDemoMoney { get; }

    /// <summary>The network whose invoices this node pays and issues (asked of the node once).</summary>
    Task<Bolt11Network> GetNetworkAsync(CancellationToken cancellationToken);

    Task<LightningInvoice> CreateInvoiceAsync(ulong amountSat, string? description, TimeSpan expiry, CancellationToken cancellationToken);

    Task<InvoiceState> CheckInvoiceAsync(string paymentHash, CancellationToken cancellationToken);

    /// <summary>
    /// Paid invoices as the node reports them, from just after <paramref name="cursor"/> (null: from now on), until the
    /// stream breaks (the caller reconnects from the last cursor it stored) or <paramref name="cancellationToken"/> fires.
    /// </summary>
    IAsyncEnumerable<InvoicePaid> WatchInvoicesAsync(string? cursor, CancellationToken cancellationToken);

    /// <summary>
    /// Pays <paramref name="invoice"/> spending at most <paramref name="maxFeeSat"/> on routing. Returns once the payment
    /// is definitive, or Pending when <paramref name="cancellationToken"/> fires first (the node keeps trying).
    /// </summary>
    Task<PaymentResult> PayInvoiceAsync(Bolt11Invoice invoice, ulong maxFeeSat, CancellationToken cancellationToken);

    /// <summary>The state of an outgoing payment by payment hash: definitive, in flight, or unknown to the node.</summary>
    Task<PaymentResult> CheckPaymentAsync(string paymentHash, CancellationToken cancellationToken);
}
