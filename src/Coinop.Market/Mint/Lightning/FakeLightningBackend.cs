using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using Coinop.Ecash.Lightning;
using NBitcoin.Secp256k1;

namespace Coinop.Market.Mint.Lightning;

/// <summary>
/// A FAKE Lightning backend for development, demos and tests: no node, no network, no real money. Its invoices are
/// real BOLT 11 strings signed by a throwaway node key made at start; they count as paid at once (unless
/// <see cref="AutoPay"/> is off, then <see cref="MarkPaid"/> pays them), and "paying" any valid invoice succeeds at
/// once with a zero routing fee. State lives in this process only.
/// </summary>
public sealed class FakeLightningBackend(TimeProvider time) : ILightningBackend, IDisposable
{
    private readonly ECPrivKey _nodeKey = ECPrivKey.Create(RandomNumberGenerator.GetBytes(32));
    private readonly ConcurrentDictionary<string, bool> _paidInvoices = new();
    private readonly ConcurrentDictionary<string, PaymentResult> _payments = new();

    public string Name => "fake";

    public bool IsDemoMoney => true;

    public Task<Bolt11Network> GetNetworkAsync(CancellationToken cancellationToken) => Task.FromResult(Bolt11Network.Mainnet);

    /// <summary>When true (the default) every invoice this backend created is reported paid.</summary>
    public bool AutoPay { get; set; } = true;

    /// <summary>When set, payments fail with this reason (to exercise the mint's failure path).</summary>
    public string? FailPaymentsWith { get; set; }

    /// <summary>When set, a payment call dies without an answer and leaves no trace, as if the node went away mid-call.</summary>
    public bool LoseConnectionOnPay { get; set; }

    /// <summary>When set, every call fails as if the node could not be reached at all.</summary>
    public bool Unreachable { get; set; }

    /// <summary>A real, signed invoice of this fake node (what a payer would be handed).</summary>
    public string Invoice(ulong amountMsat, byte[]? paymentHash = null, string description = "", TimeSpan? expiry = null) =>
        Bolt11Writer.Encode(new Bolt11Fields
        {
            AmountMsat = amountMsat,
            Timestamp = time.GetUtcNow(),
            PaymentHash = paymentHash ?? RandomNumberGenerator.GetBytes(32),
            PaymentSecret = RandomNumberGenerator.GetBytes(32),
            Description = description,
            Expiry = expiry ?? TimeSpan.FromHours(1),
            MinFinalCltvExpiryDelta = 18,
        }, _nodeKey);

    public Task<LightningInvoice> CreateInvoiceAsync(ulong amountSat, string? description, TimeSpan expiry, CancellationToken cancellationToken)
    {
        ThrowIfUnreachable();
        var hash = RandomNumberGenerator.GetBytes(32);
        var bolt11 = Invoice(checked(amountSat * 1000), hash, description ?? "", expiry);
        var paymentHash = Convert.ToHexStringLower(hash);
        _paidInvoices[paymentHash] = false;
        return Task.FromResult(new LightningInvoice(bolt11, paymentHash, time.GetUtcNow() + expiry));
    }

    /// <summary>Pays an invoice by hand when <see cref="AutoPay"/> is off.</summary>
    public void MarkPaid(string paymentHash) => _paidInvoices[paymentHash] = true;

    public Task<InvoiceState> CheckInvoiceAsync(string paymentHash, CancellationToken cancellationToken)
    {
        ThrowIfUnreachable();
        return Task.FromResult(AutoPay || _paidInvoices.GetValueOrDefault(paymentHash) ? InvoiceState.Paid : InvoiceState.Unpaid);
    }

    /// <summary>The fake node has no stream: the mint learns of payments by asking (<see cref="CheckInvoiceAsync"/>).</summary>
    public async IAsyncEnumerable<InvoicePaid> WatchInvoicesAsync(string? cursor, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await Task.Delay(Timeout.Infinite, cancellationToken);
        yield break;
    }

    public Task<PaymentResult> PayInvoiceAsync(Bolt11Invoice invoice, ulong maxFeeSat, CancellationToken cancellationToken)
    {
        ThrowIfUnreachable();
        if (LoseConnectionOnPay)
        {
            throw new IOException("the fake Lightning node went away during the payment");
        }

        // One payment per hash, as real nodes keep it: paying again answers the first outcome.
        var result = _payments.GetOrAdd(invoice.PaymentHashHex, _ => FailPaymentsWith is { } reason
            ? new PaymentResult(PaymentState.Failed, Error: reason)
            : new PaymentResult(PaymentState.Paid, 0, Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32))));
        if (result.State == PaymentState.Failed)
        {
            _payments.TryRemove(invoice.PaymentHashHex, out _); // a failed attempt may be retried
        }

        return Task.FromResult(result);
    }

    public Task<PaymentResult> CheckPaymentAsync(string paymentHash, CancellationToken cancellationToken)
    {
        ThrowIfUnreachable();
        return Task.FromResult(_payments.TryGetValue(paymentHash, out var r) ? r : new PaymentResult(PaymentState.Unknown));
    }

    public void Dispose() => _nodeKey.Dispose();

    private void ThrowIfUnreachable()
    {
        if (Unreachable)
        {
            throw new LightningUnavailableException("the fake Lightning node is unreachable");
        }
    }
}
