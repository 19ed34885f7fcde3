using System.Globalization;
using System.Net;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Coinop.Ecash.Lightning;

namespace Coinop.Market.Mint.Lightning;

/// <summary>
/// LND over its REST gateway (<c>--lightning lnd</c>). The macaroon goes hex-encoded in <c>Grpc-Metadata-macaroon</c>;
/// bodies are protobuf JSON (proto field names, 64-bit integers as strings, bytes as base64); server streams are
/// newline-separated <c>{"result": …}</c> or <c>{"error": …}</c> objects. Calls: <c>GET /v1/getinfo</c>,
/// <c>POST /v1/invoices</c>, <c>GET /v1/invoice/{r_hash_str}</c>, <c>GET /v1/invoices/subscribe</c> (resumed from
/// <c>settle_index</c>), <c>POST /v2/router/send</c> (SendPaymentV2 with <c>fee_limit_sat</c>) and
/// <c>GET /v2/router/track/{payment_hash}</c> (TrackPaymentV2; NotFound = never sent).
/// </summary>
public sealed class LndBackend : ILightningBackend, IDisposable
{
    private readonly HttpClient _http;
    private Bolt11Network? _network;

    public LndBackend(string url, string macaroonFile, string? certFile)
    {
        _http = LightningHttp.Create(url, certFile);
        _http.DefaultRequestHeaders.Add("Grpc-Metadata-macaroon", Convert.ToHexStringLower(File.ReadAllBytes(macaroonFile)));
    }

    public string Name => "lnd";

    public bool IsDemoMoney => false;

    public async Task<Bolt11Network> GetNetworkAsync(CancellationToken cancellationToken)
    {
        if (_network is { } known)
        {
            return known;
        }

        var info = await CallAsync(HttpMethod.Get, "v1/getinfo", null, cancellationToken);
        var network = info["chains"]?.AsArray().FirstOrDefault()?["network"]?.GetValue<string>() ?? "mainnet";
        _network = network switch
        {
            "mainnet" => Bolt11Network.Mainnet,
            "testnet" or "testnet3" or "testnet4" => Bolt11Network.Testnet,
            "signet" => Bolt11Network.Signet,
            "regtest" or "simnet" => Bolt11Network.Regtest,
            _ => throw new InvalidOperationException($"LND is on an unknown network '{network}'"),
        };
        return _network.Value;
    }

    public async Task<LightningInvoice> CreateInvoiceAsync(ulong amountSat, string? description, TimeSpan expiry, CancellationToken cancellationToken)
    {
        var body = new JsonObject
        {
            ["value"] = amountSat.ToString(CultureInfo.InvariantCulture),
            ["memo"] = description ?? "",
            ["expiry"] = ((long)expiry.TotalSeconds).ToString(CultureInfo.InvariantCulture),
        };
        var added = await CallAsync(HttpMethod.Post, "v1/invoices", body, cancellationToken);
        var bolt11 = Str(added, "payment_request");
        var invoice = Bolt11Invoice.Parse(bolt11);
        var hash = Convert.ToHexStringLower(Convert.FromBase64String(Str(added, "r_hash")));
        if (hash != invoice.PaymentHashHex)
        {
            throw new InvalidOperationException("LND answered an invoice whose payment hash is not its r_hash");
        }

        return new LightningInvoice(bolt11, hash, invoice.ExpiresAt);
    }

    public async Task<InvoiceState> CheckInvoiceAsync(string paymentHash, CancellationToken cancellationToken)
    {
        var invoice = await CallAsync(HttpMethod.Get, "v1/invoice/" + Hex(paymentHash), null, cancellationToken);
        return Str(invoice, "state") switch
        {
            "SETTLED" => InvoiceState.Paid,
            "CANCELED" => InvoiceState.Expired,
            _ => InvoiceState.Unpaid,
        };
    }

    public async IAsyncEnumerable<InvoicePaid> WatchInvoicesAsync(string? cursor, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        // settle_index > 0 replays every invoice settled after it, then streams live ones: nothing is missed across restarts.
        var settleIndex = ulong.TryParse(cursor, NumberStyles.None, CultureInfo.InvariantCulture, out var i) ? i : 0;
        await foreach (var invoice in StreamAsync(HttpMethod.Get, $"v1/invoices/subscribe?settle_index={settleIndex}", null, cancellationToken))
        {
            if (Str(invoice, "state") == "SETTLED" && invoice["r_hash"] is not null)
            {
                yield return new InvoicePaid(Convert.ToHexStringLower(Convert.FromBase64String(Str(invoice, "r_hash"))),
                    ULong(invoice, "amt_paid_msat"), ULong(invoice, "settle_index").ToString(CultureInfo.InvariantCulture));
            }
        }
    }

    public async Task<PaymentResult> PayInvoiceAsync(Bolt11Invoice invoice, ulong maxFeeSat, CancellationToken cancellationToken)
    {
        var body = new JsonObject
        {
            ["payment_request"] = invoice.Text,
            ["fee_limit_sat"] = maxFeeSat.ToString(CultureInfo.InvariantCulture),
            ["timeout_seconds"] = 60,
            ["no_inflight_updates"] = true,
        };
        try
        {
            PaymentResult last = new(PaymentState.Pending);
            await foreach (var payment in StreamAsync(HttpMethod.Post, "v2/router/send", body, cancellationToken))
            {
                last = ToResult(payment);
                if (last.State != PaymentState.Pending)
                {
                    return last;
                }
            }

            return last;
        }
        catch (LndException ex) when (ex.Code == 6)
        {
            // AlreadyExists: this hash was paid or is being paid (by an earlier call of ours): its state is what counts.
            return await CheckPaymentAsync(invoice.PaymentHashHex, cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return new PaymentResult(PaymentState.Pending);
        }
    }

    public async Task<PaymentResult> CheckPaymentAsync(string paymentHash, CancellationToken cancellationToken)
    {
        var hash = Convert.ToBase64String(Convert.FromHexString(Hex(paymentHash))).Replace('+', '-').Replace('/', '_');
        try
        {
            // The first message of TrackPaymentV2 is the payment's current state; later ones are not waited for.
            await foreach (var payment in StreamAsync(HttpMethod.Get, $"v2/router/track/{hash}?no_inflight_updates=false", null, cancellationToken))
            {
                return ToResult(payment);
            }

            return new PaymentResult(PaymentState.Pending);
        }
        catch (LndException ex) when (ex.Code == 5)
        {
            return new PaymentResult(PaymentState.Unknown); // NotFound: "payment isn't initiated"
        }
    }

    public void Dispose() => _http.Dispose();

    private static PaymentResult ToResult(JsonNode payment) => Str(payment, "status") switch
    {
        "SUCCEEDED" => new PaymentResult(PaymentState.Paid, (ULong(payment, "fee_msat") + 999) / 1000, Str(payment, "payment_preimage")),
        "FAILED" => new PaymentResult(PaymentState.Failed, Error: Str(payment, "failure_reason")),
        _ => new PaymentResult(PaymentState.Pending),
    };

    private async Task<JsonNode> CallAsync(HttpMethod method, string path, JsonNode? body, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null)
        {
            request.Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
        }

        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, cancellationToken);
        }
        catch (HttpRequestException ex)
        {
            throw LightningHttp.Classify(ex, "lnd");
        }

        using (response)
        {
            var text = await response.Content.ReadAsStringAsync(cancellationToken);
            var json = Parse(text);
            if (!response.IsSuccessStatusCode)
            {
                throw LndException.From(json, response.StatusCode);
            }

            return json;
        }
    }

    /// <summary>A grpc-gateway server stream: one JSON object per line, <c>{"result": …}</c> or <c>{"error": …}</c>.</summary>
    private async IAsyncEnumerable<JsonNode> StreamAsync(HttpMethod method, string path, JsonNode? body, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null)
        {
            request.Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
        }

        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        }
        catch (HttpRequestException ex)
        {
            throw LightningHttp.Classify(ex, "lnd");
        }

        using (response)
        {
            if (!response.IsSuccessStatusCode)
            {
                throw LndException.From(Parse(await response.Content.ReadAsStringAsync(cancellationToken)), response.StatusCode);
            }

            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellationToken));
            while (await reader.ReadLineAsync(cancellationToken) is { } line)
            {
                if (line.Length == 0)
                {
                    continue;
                }

                var message = Parse(line);
                if (message["error"] is { } error)
                {
                    throw LndException.From(error, response.StatusCode);
                }

                yield return message["result"] ?? throw new InvalidDataException("LND sent a stream message without result or error");
            }
        }
    }

    private static JsonNode Parse(string text)
    {
        try
        {
            return JsonNode.Parse(text) ?? new JsonObject();
        }
        catch (JsonException)
        {
            return new JsonObject { ["message"] = text.Length > 200 ? text[..200] : text };
        }
    }

    private static string Hex(string paymentHash) =>
        paymentHash.Length == 64 && paymentHash.All(char.IsAsciiHexDigit) ? paymentHash.ToLowerInvariant() : throw new ArgumentException("not a payment hash", nameof(paymentHash));

    private static string Str(JsonNode node, string name) => node[name]?.GetValue<string>() ?? "";

    private static ulong ULong(JsonNode node, string name)
    {
        if (node[name] is not JsonValue v)
        {
            return 0;
        }

        if (v.TryGetValue<string>(out var s))
        {
            return ulong.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : 0;
        }

        return v.TryGetValue<ulong>(out var u) ? u : 0;
    }
}

/// <summary>An error LND answered: a gRPC status code (5 NotFound, 6 AlreadyExists…) and its message.</summary>
public sealed class LndException(int code, string message) : Exception($"LND: {message} (gRPC code {code})")
{
    public int Code { get; } = code;

    internal static LndException From(JsonNode error, HttpStatusCode status) =>
        new(error["code"] is JsonValue c && c.TryGetValue<int>(out var code) ? code : (int)status, error["message"]?.GetValue<string>() ?? status.ToString());
}
