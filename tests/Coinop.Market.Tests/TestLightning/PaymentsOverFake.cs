using Coinop.Ecash.Lightning;
using Coinop.Market.Mint.Lightning;

namespace Coinop.Market.Tests.TestLightning;

/// <summary>
/// The fake backend's invoices with payments the test decides: a test overrides how a payment and its check answer
/// (a node that never answers, scripted answers) and keeps everything else real.
/// </summary>
internal abstract class PaymentsOverFake(FakeLightningBackend inner) : ILightningBackend
{
    public abstract string Name { get; }

    public bool IsDemoMoney => true;

    public Task<Bolt11Network> GetNetworkAsync(CancellationToken cancellationToken) => inner.GetNetworkAsync(cancellationToken);

    public Task<LightningInvoice> CreateInvoiceAsync(ulong amountSat, string? description, TimeSpan expiry, CancellationToken cancellationToken) =>
        inner.CreateInvoiceAsync(amountSat, description, expiry, cancellationToken);

    public Task<InvoiceState> CheckInvoiceAsync(string paymentHash, CancellationToken cancellationToken) => inner.CheckInvoiceAsync(paymentHash, cancellationToken);

    public IAsyncEnumerable<InvoicePaid> WatchInvoicesAsync(string? cursor, CancellationToken cancellationToken) => inner.WatchInvoicesAsync(cursor, cancellationToken);

    public abstract Task<PaymentResult> PayInvoiceAsync(Bolt11Invoice invoice, ulong maxFeeSat, CancellationToken cancellationToken);

    public abstract Task<PaymentResult> CheckPaymentAsync(string paymentHash, CancellationToken cancellationToken);
}
