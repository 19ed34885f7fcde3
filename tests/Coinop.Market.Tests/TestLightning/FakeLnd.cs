using System.Globalization;
using System.Text.Json.Nodes;
using Coinop.Ecash.Lightning;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Coinop.Market.Tests.TestLightning;

/// <summary>
/// LND's REST gateway as lnd serves it (lnrpc/lightning.yaml, routerrpc/router.yaml): the hex macaroon in
/// <c>Grpc-Metadata-macaroon</c>, proto field names, 64-bit integers as strings, bytes as base64, server streams as
/// newline-separated <c>{"result": …}</c>, errors as <c>{"code", "message", "details"}</c> with the gRPC code's HTTP status.
/// </summary>
public sealed class FakeLnd(string dir) : FakeNode(dir)
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<long, bool> _dropped = new();

    public byte[] Macaroon { get; } = System.Security.Cryptography.RandomNumberGenerator.GetBytes(64);

    public string MacaroonFile => Path.Combine(Path.GetDirectoryName(CertFile)!, "admin.macaroon");

    protected override void Map(WebApplication app)
    {
        File.WriteAllBytes(MacaroonFile, Macaroon);
        var expected = Convert.ToHexStringLower(Macaroon);
        app.Use(async (context, next) =>
        {
            if (!Authorized(context, "Grpc-Metadata-macaroon", expected))
            {
                await Error(context, 2, "verification failed: signature mismatch after caveat verification", 500);
                return;
            }

            await next(context);
        });
        app.MapGet("/v1/getinfo", () => Results.Json(new JsonObject
        {
            ["identity_pubkey"] = "02" + new string('a', 64),
            ["chains"] = new JsonArray(new JsonObject { ["chain"] = "bitcoin", ["network"] = "regtest" }),
            ["synced_to_chain"] = true,
        }));
        app.MapPost("/v1/invoices", async (HttpContext context) =>
        {
            var body = (await JsonNode.ParseAsync(context.Request.Body))!;
            var invoice = AddInvoice(ulong.Parse(body["value"]!.GetValue<string>(), CultureInfo.InvariantCulture) * 1000,
                body["memo"]?.GetValue<string>() ?? "", TimeSpan.FromSeconds(long.Parse(body["expiry"]!.GetValue<string>(), CultureInfo.InvariantCulture)));
            return Results.Json(new JsonObject
            {
                ["r_hash"] = Convert.ToBase64String(Convert.FromHexString(invoice.Hash)),
                ["payment_request"] = invoice.Bolt11,
                ["add_index"] = invoice.AddIndex.ToString(CultureInfo.InvariantCulture),
                ["payment_addr"] = Convert.ToBase64String(new byte[32]),
            });
        });
        app.MapGet("/v1/invoice/{rHashStr}", (string rHashStr) =>
            Invoices.TryGetValue(rHashStr, out var invoice)
                ? Results.Json(ToJson(invoice))
                : ErrorResult(5, "unable to locate invoice", 404));
        app.MapGet("/v1/invoices/subscribe", async (HttpContext context) =>
        {
            var from = long.Parse(context.Request.Query["settle_index"].FirstOrDefault() ?? "0", CultureInfo.InvariantCulture);
            StreamResumes.Enqueue(from.ToString(CultureInfo.InvariantCulture));
            context.Response.ContentType = "application/json";
            var index = from;
            while (!context.RequestAborted.IsCancellationRequested)
            {
                var next = await NextSettledAsync(index, context.RequestAborted);
                if (DropStreamAfterEachEvent && _dropped.TryAdd(next!.SettleIndex, true))
                {
                    // The connection breaks before the event goes out, as a proxy or a restart would break it: the
                    // mint must resume from the index it stored. (Breaking it right after a write would let the reset
                    // discard bytes the client had not read yet, and the test would race the kernel.)
                    context.Abort();
                    return;
                }

                index = next!.SettleIndex;
                await Line(context, new JsonObject { ["result"] = ToJson(next) });
            }
        });
        app.MapPost("/v2/router/send", async (HttpContext context) =>
        {
            var body = (await JsonNode.ParseAsync(context.Request.Body))!;
            if (!Bolt11Invoice.TryParse(body["payment_request"]!.GetValue<string>(), out var invoice, out var error))
            {
                await Error(context, 2, "invalid payment request: " + error, 500);
                return;
            }

            if (body["fee_limit_sat"] is null)
            {
                await Error(context, 3, "no fee limit", 400);
                return;
            }

            var payment = Pay(invoice!, out var existed);
            if (existed)
            {
                await Error(context, 6, payment.Status == "complete" ? "invoice is already paid" : "payment is in transition", 409);
                return;
            }

            context.Response.ContentType = "application/json";
            await payment.Done.Task.WaitAsync(context.RequestAborted);
            await Line(context, new JsonObject { ["result"] = ToJson(payment) });
        });
        app.MapGet("/v2/router/track/{paymentHash}", async (string paymentHash, HttpContext context) =>
        {
            var hash = Convert.ToHexStringLower(Convert.FromBase64String(paymentHash.Replace('-', '+').Replace('_', '/').PadRight(44, '=')));
            if (!Payments.TryGetValue(hash, out var payment))
            {
                await Error(context, 5, "payment isn't initiated", 404);
                return;
            }

            context.Response.ContentType = "application/json";
            await Line(context, new JsonObject { ["result"] = ToJson(payment) });
            await payment.Done.Task.WaitAsync(context.RequestAborted);
            await Line(context, new JsonObject { ["result"] = ToJson(payment) });
        });
    }

    private static JsonObject ToJson(FakeInvoice i) => new()
    {
        ["memo"] = "",
        ["r_hash"] = Convert.ToBase64String(Convert.FromHexString(i.Hash)),
        ["r_preimage"] = Convert.ToBase64String(i.Preimage),
        ["value"] = (i.AmountMsat / 1000).ToString(CultureInfo.InvariantCulture),
        ["value_msat"] = i.AmountMsat.ToString(CultureInfo.InvariantCulture),
        ["settled"] = i.SettleIndex > 0,
        ["payment_request"] = i.Bolt11,
        ["add_index"] = i.AddIndex.ToString(CultureInfo.InvariantCulture),
        ["settle_index"] = i.SettleIndex.ToString(CultureInfo.InvariantCulture),
        ["amt_paid_msat"] = (i.SettleIndex > 0 ? i.AmountMsat : 0).ToString(CultureInfo.InvariantCulture),
        ["state"] = i.SettleIndex > 0 ? "SETTLED" : DateTimeOffset.UtcNow > i.ExpiresAt ? "CANCELED" : "OPEN",
    };

    private static JsonObject ToJson(FakePayment p) => new()
    {
        ["payment_hash"] = p.Hash,
        ["value_msat"] = p.AmountMsat.ToString(CultureInfo.InvariantCulture),
        ["payment_preimage"] = p.Status == "complete" ? p.Preimage : new string('0', 64),
        ["payment_request"] = p.Bolt11,
        ["status"] = p.Status switch { "complete" => "SUCCEEDED", "failed" => "FAILED", _ => "IN_FLIGHT" },
        ["fee_msat"] = (p.Status == "complete" ? p.FeeMsat : 0).ToString(CultureInfo.InvariantCulture),
        ["payment_index"] = p.Index.ToString(CultureInfo.InvariantCulture),
        ["failure_reason"] = p.Status == "failed" ? "FAILURE_REASON_NO_ROUTE" : "FAILURE_REASON_NONE",
    };

    private static async Task Line(HttpContext context, JsonNode message)
    {
        await context.Response.WriteAsync(message.ToJsonString() + "\n", context.RequestAborted);
        await context.Response.Body.FlushAsync(context.RequestAborted);
    }

    private static async Task Error(HttpContext context, int code, string message, int status)
    {
        context.Response.StatusCode = status;
        await context.Response.WriteAsJsonAsync(new { code, message, details = Array.Empty<object>() });
    }

    private static IResult ErrorResult(int code, string message, int status) =>
        Results.Json(new { code, message, details = Array.Empty<object>() }, statusCode: status);
}
