using System.Globalization;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Coinop.Ecash.Lightning;

namespace Coinop.Market.Mint.Lightning;

/// <summary>
/// Core Lightning over clnrest (<c>--lightning cln</c>): every call is <c>POST /v1/{method}</c> with the JSON-RPC
/// parameters as the body and the rune in the <c>Rune</c> header; a result comes back as 201, an error as
/// <c>{"code", "message"}</c>. Methods: <c>getinfo</c>, <c>invoice</c>, <c>listinvoices</c>, <c>waitanyinvoice</c>
/// (resumed from <c>lastpay_index</c>), <c>pay</c> (with <c>maxfee</c>) and <c>listpays</c> (all attempts of a hash).
/// </summary>
public sealed class ClnBackend : ILightningBackend, IDisposable
{
    /// <summary>How long one <c>waitanyinvoice</c> waits before it answers "timed out" (904) and is asked again.</summary>
    private static readonly TimeSpan WaitSlice = TimeSpan.FromSeconds(60);

    private readonly HttpClient _http;
    private Bolt11Network? _network;

    public ClnBackend(string url, string rune, string? certFile)
    {
        _http = LightningHttp.Create(url, certFile);
        _http.DefaultRequestHeaders.Add("Rune", rune);
    }

    public string Name => "cln";

    public bool IsDemoMoney => false;

    public async Task<Bolt11Network> GetNetworkAsync(CancellationToken cancellationToken)
    {
        if (_network is { } known)
        {
            return known;
        }

        var network = Str(await CallAsync("getinfo", new JsonObject(), cancellationToken), "network");
        _network = network switch
        {
            "bitcoin" => Bolt11Network.Mainnet,
            "testnet" or "testnet4" => Bolt11Network.Testnet,
            "signet" => Bolt11Network.Signet,
            "regtest" => Bolt11Network.Regtest,
            _ => throw new InvalidOperationException($"Core Lightning is on an unknown network '{network}'"),
        };
        return _network.Value;
    }

    public async Task<LightningInvoice> CreateInvoiceAsync(ulong amountSat, string? description, TimeSpan expiry, CancellationToken cancellationToken)
    {
        var created = await CallAsync("invoice", new JsonObject
        {
            ["amount_msat"] = checked(amountSat * 1000),
            ["label"] = "coinop-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16)),
            ["description"] = description ?? "",
            ["expiry"] = (long)expiry.TotalSeconds,
        }, cancellationToken);
        var bolt11 = Str(created, "bolt11");
        var invoice = Bolt11Invoice.Parse(bolt11);
        if (!string.Equals(Str(created, "payment_hash"), invoice.PaymentHashHex, StringComparison.OrdinalIgnoreCase))
        {
            throw new InvalidOperationException("Core Lightning answered an invoice whose payment hash is not the one it named");
        }

        return new LightningInvoice(bolt11, invoice.PaymentHashHex, invoice.ExpiresAt);
    }

    public async Task<InvoiceState> CheckInvoiceAsync(string paymentHash, CancellationToken cancellationToken)
    {
        var list = await CallAsync("listinvoices", new JsonObject { ["payment_hash"] = paymentHash }, cancellationToken);
        return (list["invoices"]?.AsArray().FirstOrDefault() is { } invoice ? Str(invoice, "status") : "") switch
        {
            "paid" => InvoiceState.Paid,
            "expired" => InvoiceState.Expired,
            _ => InvoiceState.Unpaid,
        };
    }

    public async IAsyncEnumerable<InvoicePaid> WatchInvoicesAsync(string? cursor, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var lastPayIndex = ulong.TryParse(cursor, NumberStyles.None, CultureInfo.InvariantCulture, out var i) ? i : 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            JsonNode paid;
            try
            {
                paid = await CallAsync("waitanyinvoice",
                    new JsonObject { ["lastpay_index"] = lastPayIndex, ["timeout"] = (long)WaitSlice.TotalSeconds }, cancellationToken);
            }
            catch (ClnException ex) when (ex.Code == 904)
            {
                continue; // nothing paid within the slice: ask again
            }

            lastPayIndex = ULong(paid, "pay_index");
            if (Str(paid, "status") == "paid")
            {
                yield return new InvoicePaid(Str(paid, "payment_hash").ToLowerInvariant(), ULong(paid, "amount_received_msat"),
                    lastPayIndex.ToString(CultureInfo.InvariantCulture));
            }
        }
    }

    public async Task<PaymentResult> PayInvoiceAsync(Bolt11Invoice invoice, ulong maxFeeSat, CancellationToken cancellationToken)
    {
        try
        {
            var paid = await CallAsync("pay", new JsonObject
            {
                ["bolt11"] = invoice.Text,
                ["maxfee"] = checked(maxFeeSat * 1000),
                ["retry_for"] = 60,
            }, cancellationToken);
            if (Str(paid, "status") == "complete")
            {
                return Complete(paid, "payment_preimage");
            }
        }
        catch (ClnException)
        {
            // An error from pay is not proof that nothing left (an earlier attempt may be in flight): listpays decides.
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return new PaymentResult(PaymentState.Pending);
        }

        var state = await CheckPaymentAsync(invoice.PaymentHashHex, cancellationToken);

        // pay has returned, so nothing of this call is still on its way: no record means it sent nothing.
        return state.State == PaymentState.Unknown ? new PaymentResult(PaymentState.Failed, Error: "Core Lightning refused to pay the invoice") : state;
    }

    public async Task<PaymentResult> CheckPaymentAsync(string paymentHash, CancellationToken cancellationToken)
    {
        var list = await CallAsync("listpays", new JsonObject { ["payment_hash"] = paymentHash }, cancellationToken);
        var pays = list["pays"]?.AsArray().OfType<JsonNode>().ToList() ?? [];
        var state = PaymentAttempts.Combine(pays.Select(p => Str(p, "status") switch
        {
            "complete" => PaymentState.Paid,
            "failed" => PaymentState.Failed,
            _ => PaymentState.Pending,
        }));
        return state == PaymentState.Paid
            ? Complete(pays.First(p => Str(p, "status") == "complete"), "preimage")
            : new PaymentResult(state, Error: state == PaymentState.Failed ? "every attempt failed" : null);
    }

    public void Dispose() => _http.Dispose();

    private static PaymentResult Complete(JsonNode paid, string preimageField)
    {
        var sent = ULong(paid, "amount_sent_msat");
        var amount = ULong(paid, "amount_msat");
        var fee = sent > amount ? sent - amount : 0;
        return new PaymentResult(PaymentState.Paid, (fee + 999) / 1000, Str(paid, preimageField));
    }

    private async Task<JsonNode> CallAsync(string method, JsonObject parameters, CancellationToken cancellationToken)
    {
        using var content = new StringContent(parameters.ToJsonString(), Encoding.UTF8, "application/json");
        HttpResponseMessage response;
        try
        {
            response = await _http.PostAsync("v1/" + method, content, cancellationToken);
        }
        catch (HttpRequestException ex)
        {
            throw LightningHttp.Classify(ex, "cln");
        }

        using (response)
        {
            var text = await response.Content.ReadAsStringAsync(cancellationToken);
            JsonNode json;
            try
            {
                json = JsonNode.Parse(text) ?? new JsonObject();
            }
            catch (JsonException)
            {
                json = new JsonObject { ["message"] = text.Length > 200 ? text[..200] : text };
            }

            if (!response.IsSuccessStatusCode)
            {
                throw new ClnException(json["code"] is JsonValue c && c.TryGetValue<int>(out var code) ? code : (int)response.StatusCode,
                    json["message"]?.GetValue<string>() ?? response.StatusCode.ToString());
            }

            return json;
        }
    }

    private static string Str(JsonNode node, string name) => node[name] is JsonValue v && v.TryGetValue<string>(out var s) ? s : "";

    /// <summary>An msat amount or index: a JSON number, or a string like <c>"1000msat"</c> (older nodes).</summary>
    private static ulong ULong(JsonNode node, string name)
    {
        if (node[name] is not JsonValue v)
        {
            return 0;
        }

        if (v.TryGetValue<string>(out var s))
        {
            return ulong.TryParse(s.EndsWith("msat", StringComparison.Ordinal) ? s[..^4] : s, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : 0;
        }

        return v.TryGetValue<ulong>(out var u) ? u : 0;
    }
}

/// <summary>An error Core Lightning answered: its JSON-RPC code (200 in progress, 904 timed out…) and message.</summary>
public sealed class ClnException(int code, string message) : Exception($"Core Lightning: {message} (code {code})")
{
    public int Code { get; } = code;
}
