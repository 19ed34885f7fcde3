using System.Collections.Concurrent;
using System.Security.Cryptography;

namespace Coinop.Market.Mint.Lightning;

/// <summary>
/// A FAKE Lightning backend for development, demos and tests: no node, no network, no real money. Invoices it
/// creates count as paid at once (unless <see cref="AutoPay"/> is off, then <see cref="MarkPaid"/> pays them), and
/// "paying" an invoice succeeds at once for the amount in its human-readable part, with a zero routing fee. Its
/// fee reserve is 1% (at least 1 sat) so wallets exercise NUT-08 change. State lives in this process only.
/// </summary>
public sealed class FakeLightningBackend(TimeProvider time) : ILightningBackend
{
    private readonly ConcurrentDictionary<string, bool> _paidInvoices = new();
    private readonly ConcurrentDictionary<string, PaymentResult> _payments = new();

    public string Name => "fake";

    /// <summary>When true (the default) every invoice this backend created is reported paid.</summary>
    public bool AutoPay { get; set; } = true;

    /// <summary>When set, payments fail with this reason (to exercise the mint's failure path).</summary>
    public string? FailPaymentsWith { get; set; }

    /// <summary>When set, a payment call dies without an answer and leaves no trace, as if the node went away mid-call.</summary>
    public bool LoseConnectionOnPay { get; set; }

    public Task<LightningInvoice> CreateInvoiceAsync(ulong amountSat, string? description, TimeSpan expiry, CancellationToken cancellationToken)
    {
        var hash = RandomNumberGenerator.GetBytes(32);
        var now = time.GetUtcNow();
        var bolt11 = FakeBolt11.Encode(checked(amountSat * 1000), hash, now, expiry);
        var paymentHash = Convert.ToHexStringLower(hash);
        _paidInvoices[paymentHash] = false;
        return Task.FromResult(new LightningInvoice(bolt11, paymentHash, now + expiry));
    }

    /// <summary>Pays an invoice by hand when <see cref="AutoPay"/> is off.</summary>
    public void MarkPaid(string paymentHash) => _paidInvoices[paymentHash] = true;

    public Task<InvoiceState> CheckInvoiceAsync(string paymentHash, CancellationToken cancellationToken) =>
        Task.FromResult(AutoPay || _paidInvoices.GetValueOrDefault(paymentHash) ? InvoiceState.Paid : InvoiceState.Unpaid);

    public Task<PaymentQuote?> QuotePaymentAsync(string bolt11, CancellationToken cancellationToken)
    {
        if (FakeBolt11.DecodeAmountMsat(bolt11) is not { } msat)
        {
            return Task.FromResult<PaymentQuote?>(null);
        }

        var sat = msat / 1000 + (msat % 1000 == 0 ? 0UL : 1UL);
        return Task.FromResult<PaymentQuote?>(new PaymentQuote(msat, Math.Max(1, sat / 100), PaymentHashOf(bolt11)));
    }

    public Task<PaymentResult> PayInvoiceAsync(string bolt11, ulong maxFeeSat, CancellationToken cancellationToken)
    {
        if (LoseConnectionOnPay)
        {
            throw new IOException("the fake Lightning node went away during the payment");
        }

        var hash = PaymentHashOf(bolt11);
        var result = _payments.GetOrAdd(hash, _ => FailPaymentsWith is { } reason
            ? new PaymentResult(PaymentState.Failed, Error: reason)
            : new PaymentResult(PaymentState.Paid, 0, Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32))));
        if (result.State == PaymentState.Failed)
        {
            _payments.TryRemove(hash, out _); // a failed attempt may be retried
        }

        return Task.FromResult(result);
    }

    public Task<PaymentResult> CheckPaymentAsync(string paymentHash, CancellationToken cancellationToken) =>
        Task.FromResult(_payments.TryGetValue(paymentHash, out var r) ? r : new PaymentResult(PaymentState.Unknown));

    private static string PaymentHashOf(string bolt11) =>
        FakeBolt11.DecodePaymentHash(bolt11) ?? Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(bolt11.Trim().ToLowerInvariant())));
}
