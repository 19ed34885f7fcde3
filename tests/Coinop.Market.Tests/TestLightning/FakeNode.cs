using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Coinop.Ecash.Lightning;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using NBitcoin.Secp256k1;
using SHA256 = System.Security.Cryptography.SHA256;

namespace Coinop.Market.Tests.TestLightning;

/// <summary>What the fake node does with an outgoing payment.</summary>
public enum PayPlan
{
    Succeed,
    Fail,

    /// <summary>In flight until <see cref="FakeNode.Resolve"/> says how it ends.</summary>
    Hold,
}

/// <summary>An outgoing payment as the fake node keeps it.</summary>
public sealed class FakePayment(string hash, string bolt11, ulong amountMsat, long index)
{
    public string Hash { get; } = hash;

    public string Bolt11 { get; } = bolt11;

    public ulong AmountMsat { get; } = amountMsat;

    public long Index { get; } = index;

    /// <summary>pending, complete or failed.</summary>
    public string Status { get; set; } = "pending";

    public ulong FeeMsat { get; set; }

    public string Preimage { get; set; } = "";

    public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}

/// <summary>An invoice of the fake node.</summary>
public sealed class FakeInvoice(string hash, string bolt11, ulong amountMsat, long addIndex, DateTimeOffset expiresAt, string label, byte[] preimage)
{
    public string Hash { get; } = hash;

    public string Bolt11 { get; } = bolt11;

    public ulong AmountMsat { get; } = amountMsat;

    public long AddIndex { get; } = addIndex;

    public DateTimeOffset ExpiresAt { get; } = expiresAt;

    public string Label { get; } = label;

    public long SettleIndex { get; set; }

    public byte[] Preimage { get; } = preimage;
}

/// <summary>
/// The state of a fake Lightning node and its HTTPS listener (a self-signed certificate made at test time, written to a
/// file the market is given with <c>--lnd-cert</c>/<c>--cln-cert</c>). Subclasses speak LND's or Core Lightning's REST.
/// Invoices are real BOLT 11 strings signed by the node's key; the test pays them (<see cref="Settle"/>) and decides
/// how outgoing payments end (<see cref="Plan"/>, <see cref="Resolve"/>).
/// </summary>
public abstract class FakeNode : IAsyncDisposable
{
    private readonly ECPrivKey _key = ECPrivKey.Create(RandomNumberGenerator.GetBytes(32));
    private readonly Lock _gate = new();
    private readonly List<TaskCompletionSource> _settledWaiters = [];
    private long _addIndex;
    private long _settleIndex;
    private long _payIndex;
    private WebApplication? _app;

    protected FakeNode(string dir)
    {
        CertFile = Path.Combine(dir, GetType().Name + ".cert");
    }

    public string Url { get; private set; } = "";

    public string CertFile { get; }

    public ConcurrentDictionary<string, FakeInvoice> Invoices { get; } = new();

    public ConcurrentDictionary<string, FakePayment> Payments { get; } = new();

    /// <summary>How the next outgoing payments end.</summary>
    public PayPlan Plan { get; set; } = PayPlan.Succeed;

    /// <summary>The routing fee a successful payment costs.</summary>
    public ulong FeeMsat { get; set; } = 1000;

    /// <summary>When true, the invoice stream breaks before each new event goes out (the mint must resume from its stored index).</summary>
    public bool DropStreamAfterEachEvent { get; set; }

    private int _unauthorized;

    /// <summary>Requests that did not carry the right credential (must stay 0).</summary>
    public int Unauthorized => Volatile.Read(ref _unauthorized);

    /// <summary>The resume indexes the mint asked the invoice stream for, in order.</summary>
    public ConcurrentQueue<string> StreamResumes { get; } = new();

    public async Task StartAsync()
    {
        var now = DateTimeOffset.UtcNow;
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=" + GetType().Name, key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("localhost");
        request.CertificateExtensions.Add(san.Build());
        using var created = request.CreateSelfSigned(now.AddDays(-1), now.AddDays(30));
        var certificate = X509CertificateLoader.LoadPkcs12(created.Export(X509ContentType.Pkcs12), null);
        await File.WriteAllTextAsync(CertFile, created.ExportCertificatePem());

        var builder = WebApplication.CreateBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, o => o.UseHttps(certificate)));
        _app = builder.Build();
        Map(_app);
        await _app.StartAsync(TestContext.Current.CancellationToken);
        Url = _app.Urls.First();
    }

    protected abstract void Map(WebApplication app);

    public FakeInvoice AddInvoice(ulong amountMsat, string description, TimeSpan expiry, string? label = null)
    {
        var preimage = RandomNumberGenerator.GetBytes(32);
        var hash = SHA256.HashData(preimage);
        var bolt11 = Bolt11Writer.Encode(new Bolt11Fields
        {
            Network = Bolt11Network.Regtest,
            AmountMsat = amountMsat,
            Timestamp = DateTimeOffset.UtcNow,
            PaymentHash = hash,
            PaymentSecret = RandomNumberGenerator.GetBytes(32),
            Description = description,
            Expiry = expiry,
            MinFinalCltvExpiryDelta = 18,
        }, _key);
        var invoice = new FakeInvoice(Convert.ToHexStringLower(hash), bolt11, amountMsat, Interlocked.Increment(ref _addIndex),
            DateTimeOffset.UtcNow + expiry, label ?? "", preimage);
        Invoices[invoice.Hash] = invoice;
        return invoice;
    }

    /// <summary>An invoice of some other node on the same network, for the mint to pay.</summary>
    public static string ExternalInvoice(ulong amountMsat)
    {
        using var payee = ECPrivKey.Create(RandomNumberGenerator.GetBytes(32));
        return Bolt11Writer.Encode(new Bolt11Fields
        {
            Network = Bolt11Network.Regtest,
            AmountMsat = amountMsat,
            Timestamp = DateTimeOffset.UtcNow,
            PaymentHash = RandomNumberGenerator.GetBytes(32),
            PaymentSecret = RandomNumberGenerator.GetBytes(32),
            Description = "somewhere else",
            Expiry = TimeSpan.FromHours(1),
        }, payee);
    }

    /// <summary>Someone paid this invoice: it is settled and the stream announces it.</summary>
    public void Settle(string paymentHash)
    {
        var invoice = Invoices[paymentHash];
        lock (_gate)
        {
            invoice.SettleIndex = Interlocked.Increment(ref _settleIndex);
            foreach (var w in _settledWaiters)
            {
                w.TrySetResult();
            }

            _settledWaiters.Clear();
        }
    }

    /// <summary>Waits until an invoice settled after <paramref name="index"/> exists (for the streams).</summary>
    protected async Task<FakeInvoice?> NextSettledAsync(long index, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task wait;
            lock (_gate)
            {
                var next = Invoices.Values.Where(i => i.SettleIndex > index).OrderBy(i => i.SettleIndex).FirstOrDefault();
                if (next is not null)
                {
                    return next;
                }

                var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _settledWaiters.Add(tcs);
                wait = tcs.Task;
            }

            await wait.WaitAsync(cancellationToken);
        }
    }

    /// <summary>Starts (or finds) the outgoing payment of an invoice, as a node does: one per payment hash.</summary>
    protected FakePayment Pay(Bolt11Invoice invoice, out bool existed)
    {
        var created = false;
        var payment = Payments.GetOrAdd(invoice.PaymentHashHex, h =>
        {
            created = true;
            return new FakePayment(h, invoice.Text, invoice.AmountMsat ?? 0, Interlocked.Increment(ref _payIndex));
        });
        existed = !created;
        if (created)
        {
            switch (Plan)
            {
                case PayPlan.Succeed:
                    Resolve(payment.Hash, succeed: true);
                    break;
                case PayPlan.Fail:
                    Resolve(payment.Hash, succeed: false);
                    break;
            }
        }

        return payment;
    }

    /// <summary>Ends an in-flight payment.</summary>
    public void Resolve(string paymentHash, bool succeed)
    {
        var payment = Payments[paymentHash];
        if (succeed)
        {
            payment.FeeMsat = FeeMsat;
            payment.Preimage = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
            payment.Status = "complete";
        }
        else
        {
            payment.Status = "failed";
        }

        payment.Done.TrySetResult();
    }

    protected bool Authorized(HttpContext context, string header, string expected)
    {
        if (context.Request.Headers[header].ToString() == expected)
        {
            return true;
        }

        CountUnauthorized();
        return false;
    }

    protected void CountUnauthorized() => Interlocked.Increment(ref _unauthorized);

    public async ValueTask DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.StopAsync(CancellationToken.None);
            await _app.DisposeAsync();
        }

        _key.Dispose();
        GC.SuppressFinalize(this);
    }
}
