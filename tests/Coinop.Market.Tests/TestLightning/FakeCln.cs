using System.Text.Json.Nodes;
using Coinop.Ecash.Lightning;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Coinop.Market.Tests.TestLightning;

/// <summary>
/// Core Lightning's clnrest as the plugin serves it: <c>POST /v1/{method}</c>, the rune in the <c>Rune</c> header (403
/// without, 401 when wrong), a result as 201 with the method's JSON (doc/schemas), an error as 500 with
/// <c>{"code", "message"}</c>. Amounts are msat integers.
/// </summary>
public sealed class FakeCln(string dir) : FakeNode(dir)
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<long, bool> _dropped = new();

    public string Rune { get; } = "tU-RLjMiDpY2U0o3W1oFowar36RFGpWloPbW9-RuZdo9MyZpZD0wMjRiOWExZmE4ZTAwNmYxZTM5MzdmNjVmNjZjNDA4ZTZkYThlMWNhNzI4ZWE0MzIyMmE3MzgxZGYxY2M0NDk2MDU";

    protected override void Map(WebApplication app)
    {
        app.MapPost("/v1/{method}", async (string method, HttpContext context) =>
        {
            if (context.Request.Headers["Rune"].Count == 0)
            {
                CountUnauthorized();
                return Fail(1501, "Not authorized: Missing rune", 403);
            }

            if (!Authorized(context, "Rune", Rune))
            {
                return Fail(1502, "Rune is not valid", 401);
            }

            var body = context.Request.ContentLength is 0 ? new JsonObject() : (await JsonNode.ParseAsync(context.Request.Body))!.AsObject();
            return method switch
            {
                "getinfo" => Ok(new JsonObject { ["id"] = "02" + new string('b', 64), ["network"] = "regtest", ["blockheight"] = 100 }),
                "invoice" => Invoice(body),
                "listinvoices" => Ok(new JsonObject
                {
                    ["invoices"] = new JsonArray([.. Invoices.Values.Where(i => i.Hash == body["payment_hash"]?.GetValue<string>()).Select(ToJson)]),
                }),
                "waitanyinvoice" => await WaitAnyAsync(body, context),
                "pay" => await PayAsync(body, context),
                "listpays" => Ok(new JsonObject
                {
                    ["pays"] = new JsonArray([.. Payments.Values.Where(p => p.Hash == body["payment_hash"]?.GetValue<string>()).Select(ToJson)]),
                }),
                _ => Fail(-32601, $"Unknown command '{method}'", 404),
            };
        });
    }

    private IResult Invoice(JsonObject body)
    {
        var label = body["label"]!.ToString();
        if (Invoices.Values.Any(i => i.Label == label))
        {
            return Fail(900, "Duplicate label", 500);
        }

        var invoice = AddInvoice(body["amount_msat"]!.GetValue<ulong>(), body["description"]!.GetValue<string>(),
            TimeSpan.FromSeconds(body["expiry"]?.GetValue<long>() ?? 604800), label);
        return Ok(new JsonObject
        {
            ["payment_hash"] = invoice.Hash,
            ["expires_at"] = invoice.ExpiresAt.ToUnixTimeSeconds(),
            ["bolt11"] = invoice.Bolt11,
            ["payment_secret"] = new string('1', 64),
            ["created_index"] = invoice.AddIndex,
        });
    }

    private async Task<IResult> WaitAnyAsync(JsonObject body, HttpContext context)
    {
        var last = body["lastpay_index"]?.GetValue<long>() ?? 0;
        StreamResumes.Enqueue(last.ToString(System.Globalization.CultureInfo.InvariantCulture));
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
        if (body["timeout"] is { } t)
        {
            timeout.CancelAfter(TimeSpan.FromSeconds(t.GetValue<long>()));
        }

        try
        {
            var next = await NextSettledAsync(last, timeout.Token);
            if (DropStreamAfterEachEvent && _dropped.TryAdd(next!.SettleIndex, true))
            {
                context.Abort(); // the long poll breaks before it answers: the mint asks again from the same index
                return Results.Empty;
            }

            return Ok(ToJson(next!));
        }
        catch (OperationCanceledException) when (!context.RequestAborted.IsCancellationRequested)
        {
            return Fail(904, "Timed out", 500);
        }
    }

    private async Task<IResult> PayAsync(JsonObject body, HttpContext context)
    {
        if (!Bolt11Invoice.TryParse(body["bolt11"]?.GetValue<string>(), out var invoice, out var error))
        {
            return Fail(-32602, "Invalid bolt11: " + error, 500);
        }

        if (body["maxfee"] is null)
        {
            return Fail(-32602, "the mint must always name maxfee", 500);
        }

        var payment = Pay(invoice!, out _); // pay returns the earlier payment's outcome, as the pay plugin does
        await payment.Done.Task.WaitAsync(context.RequestAborted);
        return payment.Status == "complete"
            ? Ok(new JsonObject
            {
                ["payment_preimage"] = payment.Preimage,
                ["payment_hash"] = payment.Hash,
                ["created_at"] = 1_700_000_000,
                ["parts"] = 1,
                ["amount_msat"] = payment.AmountMsat,
                ["amount_sent_msat"] = payment.AmountMsat + payment.FeeMsat,
                ["status"] = "complete",
            })
            : Fail(205, "Ran out of routes to try", 500);
    }

    private static JsonObject ToJson(FakeInvoice i)
    {
        var json = new JsonObject
        {
            ["label"] = i.Label,
            ["payment_hash"] = i.Hash,
            ["status"] = i.SettleIndex > 0 ? "paid" : DateTimeOffset.UtcNow > i.ExpiresAt ? "expired" : "unpaid",
            ["expires_at"] = i.ExpiresAt.ToUnixTimeSeconds(),
            ["amount_msat"] = i.AmountMsat,
            ["bolt11"] = i.Bolt11,
            ["created_index"] = i.AddIndex,
        };
        if (i.SettleIndex > 0)
        {
            json["pay_index"] = i.SettleIndex;
            json["amount_received_msat"] = i.AmountMsat;
            json["paid_at"] = 1_700_000_000;
            json["payment_preimage"] = Convert.ToHexStringLower(i.Preimage);
        }

        return json;
    }

    private static JsonObject ToJson(FakePayment p)
    {
        var json = new JsonObject
        {
            ["payment_hash"] = p.Hash,
            ["status"] = p.Status,
            ["created_at"] = 1_700_000_000,
            ["bolt11"] = p.Bolt11,
            ["created_index"] = p.Index,
        };
        if (p.Status == "complete")
        {
            json["amount_msat"] = p.AmountMsat;
            json["amount_sent_msat"] = p.AmountMsat + p.FeeMsat;
            json["preimage"] = p.Preimage;
        }

        return json;
    }

    private static IResult Ok(JsonNode result) => Results.Json(result, statusCode: 201);

    private static IResult Fail(int code, string message, int status) => Results.Json(new { code, message }, statusCode: status);
}
